"""End-to-end latency of one enterprise request on loopback, through the real federation.

Starts a Kafka broker, a few seeded centres and the gateway (the same launcher as `make run`), then
submits N requests one after another and measures, for each, the time from SubmitRequest to the moment
the gateway reports ACCEPTED (gateway → Kafka → centre → Kafka → gateway), polling GetRequest every 2 ms.
Also prints the submit RPC's own latency and the resident memory of the processes.

    .venv/bin/python -m bench.e2e_latency [--requests 200] [--centres hz-oil-gas,cz-rail,...] [--insecure]

Secured as `make run` is (TLS on gRPC and Kafka, client certificates, ACLs); ``--insecure`` turns all of it
off (METROFED_INSECURE=1) to measure what it costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from infra.devstack import KafkaBroker
from infra.devstack._proc import rss_kib
from infra.federation import SEED_DIR, Federation
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.domain.access import Role
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq

NEED = rq.Need(instrument_type="pressure transmitter", range=rq.MeasuringRange(min=0, max=25, unit="MPa"),
               tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=0.1), city="无锡")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--centres", default="hz-oil-gas,sh-marine-power,hf-nev-energy,cz-rail")
    ap.add_argument("--insecure", action="store_true", help="no TLS, ACLs, credentials or signatures: only to measure what they cost")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="metrofed-bench-e2e-"))
    broker = KafkaBroker(work / "kafka", pki_home=work, insecure=args.insecure)
    if args.insecure:
        os.environ["METROFED_INSECURE"] = "1"  # this process's gRPC client too
    fed = None
    try:
        print("starting Kafka …", flush=True)
        broker.start(timeout=180)
        ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS, security=broker.admin_security)
        print(f"transport: {'PLAINTEXT (--insecure)' if args.insecure else 'TLS, Kafka client certificates, ACLs'}")
        # no trace exporter: measure the federation, not Zipkin
        fed = Federation(broker.bootstrap, work, broker.ca)
        centres = args.centres.split(",")
        for c in centres:
            fed.start_centre(SEED_DIR / f"{c}.yaml")
        fed.start_gateway()
        fed.wait_ready(timeout=120)
        stub = fed.gateway_as("bench", Role.OPERATOR)
        enterprises = [fed.gateway_as(f"bench-{i}") for i in range(50)]  # each with its own credential
        for _ in range(100):
            res = stub.SearchCatalog(gw.SearchCatalogRequest(limit=1), timeout=5)
            if {c.value for f in res.facets if f.name == "centre" for c in f.counts} >= set(centres):
                break
            time.sleep(0.1)
        print(f"federation of {len(centres)} centres up; {args.requests} sequential requests …", flush=True)
        submit, e2e, not_accepted = [], [], 0
        for i in range(args.requests):
            t0 = time.perf_counter()
            req = enterprises[i % 50].SubmitRequest(gw.SubmitRequestRequest(enterprise_id=f"bench-{i % 50}", need=NEED),
                                                    timeout=10).request
            submit.append(time.perf_counter() - t0)
            deadline = t0 + 10
            while True:
                state = stub.GetRequest(gw.GetRequestRequest(request_id=req.request_id), timeout=5).request.state
                if state in (rq.REQUEST_STATE_ACCEPTED, rq.REQUEST_STATE_DECLINED, rq.REQUEST_STATE_UNROUTABLE):
                    break
                if time.perf_counter() > deadline:
                    break
                time.sleep(0.002)
            if state == rq.REQUEST_STATE_ACCEPTED:
                e2e.append(time.perf_counter() - t0)
            else:
                not_accepted += 1
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{args.requests}", flush=True)
        ms = lambda xs, p: pct(xs, p) * 1000  # noqa: E731
        print(f"submit RPC        p50 {ms(submit, 50):7.1f} ms  p99 {ms(submit, 99):7.1f} ms")
        if e2e:
            print(f"submit → ACCEPTED p50 {ms(e2e, 50):7.1f} ms  p99 {ms(e2e, 99):7.1f} ms  "
                  f"mean {statistics.mean(e2e) * 1000:.1f} ms  (n={len(e2e)}, not accepted {not_accepted})")
        rss = {n: rss_kib(p.popen.pid) or 0 for n, p in fed.procs.items()}
        rss["kafka"] = rss_kib(broker.pid) or 0
        print("RSS MiB: " + ", ".join(f"{n} {v / 1024:.0f}" for n, v in sorted(rss.items())))
        return 0
    finally:
        if fed is not None:
            fed.stop()
        broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
