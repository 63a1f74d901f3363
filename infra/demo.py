"""`make run`: the whole federation on this machine, seeded, with a few enterprise requests to watch.

Starts a Kafka broker (KRaft) and a Zipkin server, then all seeded centres (one process each) and the
gateway; sends the requests in seed/demo-requests.yaml through the gateway's gRPC API; prints where each
went and why, its state, and the Zipkin URL of its trace. Keeps everything up until Ctrl-C (or SIGTERM),
then stops every process it started, Kafka and Zipkin included. State lives in var/demo/ and is wiped
at each start, so every run begins from an empty bus — except the development PKI (var/demo/pki/): the CA
and the parties' certificates are made on the first run and reused, so a client trusting the CA keeps
working across runs. Every gRPC port and the broker speak TLS (docs/transport-security.md).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time

import grpc
import yaml

from infra.devstack import KafkaBroker, ZipkinServer
from infra.devstack._proc import port_is_free, rss_kib
from infra.federation import REPO_ROOT, SEED_DIR, Federation
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.domain.access import Role
from metrofed.v1 import common_pb2, gateway_service_pb2 as gw_pb
from metrofed.v1 import request_pb2 as rq

WORKDIR = REPO_ROOT / "var" / "demo"
DEMO_REQUESTS = REPO_ROOT / "seed" / "demo-requests.yaml"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def need_message(d: dict) -> rq.Need:
    """The YAML form of a need (seed/demo-requests.yaml, tests) → the wire message."""
    r = d.get("range", {})
    t = d.get("tolerance", {})
    msg = rq.Need(
        measurand=d.get("measurand", ""), instrument_type=d.get("instrument_type", ""),
        quantity_kind=d.get("quantity_kind", ""),
        range=rq.MeasuringRange(min=r.get("min", 0), max=r.get("max", 0), unit=str(r.get("unit", ""))),
        tolerance=rq.Tolerance(kind=rq.ToleranceKind.Value("TOLERANCE_KIND_" + t.get("kind", "unspecified").upper()),
                               value=t.get("value", 0), unit=str(t.get("unit", ""))),
        city=d.get("city", ""), province=d.get("province", ""), deadline=str(d.get("deadline", "")),
        quantity=int(d.get("quantity", 1)))
    if "legal_use" in d:
        msg.legal_use = bool(d["legal_use"])
    if d.get("service_kind"):
        msg.service_kind = common_pb2.ServiceKind.Value("SERVICE_KIND_" + d["service_kind"].upper())
    if d.get("decision_rule"):
        msg.decision_rule.kind = rq.DecisionRuleKind.Value("DECISION_RULE_KIND_" + d["decision_rule"].upper())
    return msg


def _state(v: int) -> str:
    return rq.RequestState.Name(v).removeprefix("REQUEST_STATE_").lower()


def run_demo_requests(fed: Federation, zipkin_url: str) -> list[float]:
    latencies = []
    for i, item in enumerate(yaml.safe_load(DEMO_REQUESTS.read_text(encoding="utf-8")), 1):
        say(f"\n[{i}] {item['enterprise_id']}: “{item['say']}”")
        stub = fed.gateway_as(item["enterprise_id"])  # each enterprise calls with its own credential
        t0 = time.perf_counter()
        try:
            sub = stub.SubmitRequest(gw_pb.SubmitRequestRequest(need=need_message(item["need"])), timeout=10)
        except grpc.RpcError as exc:
            say(f"    rejected by the gateway: {exc.code().name}: {exc.details()}")
            continue
        req = sub.request
        decision = req.routing
        if req.assigned_centre_id:
            best = decision.candidates[0]
            say(f"    routed to {best.centre_id} ({best.capability_id}), TUR {best.tur:.1f}:1 — "
                f"{decision.candidates_total} eligible, {decision.rejected_total} rejected")
            say(f"    why: {best.explanation}")
            if decision.rejected_centres:
                say("    centres that cannot: " + "; ".join(
                    f"{r.centre_id} ({', '.join(f'{k.lower()} {n}' for k, n in sorted(r.by_reason.items()))})"
                    for r in decision.rejected_centres[:5])
                    + (f"; +{len(decision.rejected_centres) - 5} more" if len(decision.rejected_centres) > 5 else ""))
        else:
            say(f"    no centre can do it — recorded as a coverage gap ({decision.rejected_total} rejected)")
            for r in decision.rejected[:3]:
                say(f"      - {r.centre_id}/{r.capability_id}: {r.reason_code}: {r.reason}")
            for p in decision.split:
                say(f"      split proposal: {p.centre_id} {p.min:g}–{p.max:g} {p.unit}")
        if decision.legal_note:
            say(f"    law: {decision.legal_note}")
        state = req.state
        deadline = time.monotonic() + 20
        while req.assigned_centre_id and _state(state) in ("submitted", "routed", "received") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
            state = stub.GetRequest(gw_pb.GetRequestRequest(request_id=req.request_id), timeout=5).request.state
        if req.assigned_centre_id:
            latencies.append(time.perf_counter() - t0)
        say(f"    state: {_state(state)}   request {req.request_id}")
        say(f"    trace: {zipkin_url}/zipkin/traces/{req.trace_id}")
    return latencies


def main() -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    WORKDIR.mkdir(parents=True, exist_ok=True)
    for old in WORKDIR.iterdir():
        if old.name != "pki":
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
    t_start = time.monotonic()
    broker = KafkaBroker(WORKDIR / "kafka", port=9092 if port_is_free(9092) else None, pki_home=WORKDIR)
    zipkin = ZipkinServer(port=9411 if port_is_free(9411) else None, data_dir=WORKDIR / "zipkin")
    fed: Federation | None = None
    try:
        say("metrofed: starting Kafka (KRaft) and Zipkin — the first run downloads them from Maven Central")
        broker.start(timeout=180)
        zipkin.start(timeout=180)
        ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS, security=broker.admin_security)
        ca = broker.ca.ca_cert_path
        say(f"  Kafka  {broker.bootstrap} (TLS, client certificates, ACLs)\n  Zipkin {zipkin.url}\n  CA     {ca}")
        fed = Federation(broker.bootstrap, WORKDIR, broker.ca, zipkin_endpoint=zipkin.spans_endpoint)
        seeds = sorted(SEED_DIR.glob("*.yaml"))
        say(f"starting {len(seeds)} centres and the gateway …")
        for seed in seeds:
            fed.start_centre(seed)
        fed.wait_ready(*[f"centre-{s.stem}" for s in seeds], timeout=240)
        fed.start_gateway()
        fed.wait_ready("gateway", timeout=120)
        gateway = fed.procs["gateway"].endpoint
        ready_s = time.monotonic() - t_start
        say(f"federation ready in {ready_s:.1f}s — gateway {gateway}")
        for name, proc in sorted(fed.procs.items()):
            say(f"  {name:28s} {proc.endpoint}")

        # The catalog fills as centres' capability events arrive; wait until it holds them all.
        stub = fed.gateway_as("demo", Role.OPERATOR)
        expected = len(seeds)
        for _ in range(100):
            res = stub.SearchCatalog(gw_pb.SearchCatalogRequest(limit=1), timeout=5)
            centres = {c.value for f in res.facets if f.name == "centre" for c in f.counts}
            if len(centres) >= expected:
                break
            time.sleep(0.2)
        say(f"federated catalog: {res.total} capabilities from {len(centres)} centres")

        latencies = run_demo_requests(fed, zipkin.url)
        if latencies:
            say(f"\nsubmit → accepted: {', '.join(f'{x * 1000:.0f} ms' for x in latencies)}")
        pids = [p.popen.pid for p in fed.procs.values()] + [broker.pid, zipkin.pid]
        rss = sum(rss_kib(p) or 0 for p in pids if p)
        say(f"resident memory of the federation: {rss / 1024:.0f} MiB "
            f"({len(fed.procs)} metrofed processes, Kafka, Zipkin)")
        operator = fed.home.credential_file(Role.OPERATOR, "demo")
        say(f"\nThe federation is up. Traces: {zipkin.url}/zipkin/  Gateway gRPC: {gateway} "
            f"(TLS, reflection on; try `.venv/bin/buf curl --protocol grpc --cacert {ca.relative_to(REPO_ROOT)} "
            f"-H \"authorization: Bearer $(cat {operator.relative_to(REPO_ROOT)})\" "
            f"https://{gateway}/metrofed.v1.GatewayService/SearchCatalog -d '{{\"text\":\"torque\"}}'`)")
        say(f"Credentials: {fed.home.root.relative_to(REPO_ROOT)}/credentials/ (`metrofed issue …` makes more; "
            "docs/security.md)")
        say("Press Ctrl-C to stop everything.")
        if os.environ.get("METROFED_DEMO_EXIT") == "1":  # for scripted checks of `make run`
            stop.set()
        while not stop.wait(1.0):
            dead = [n for n, p in fed.procs.items() if not p.alive]
            if dead:
                say(f"process(es) exited unexpectedly: {dead}; see {WORKDIR / 'logs'}")
                return 1
        return 0
    finally:
        say("\nstopping …")
        if fed is not None:
            fed.stop()
        zipkin.stop()
        broker.stop()
        left = [n for n, p in (fed.procs.items() if fed else []) if p.alive]
        say("stopped: no process left behind" if not left else f"still alive: {left}")


if __name__ == "__main__":
    sys.exit(main())
