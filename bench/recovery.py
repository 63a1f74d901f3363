"""Recovery after a broker restart, and failover of a dead centre's backlog, on a real federation.

    .venv/bin/python -m bench.recovery [--runs 3] [--centres 3] [--in-flight 200] [--backlog 300]

Each run starts its own broker (infra/devstack) and federation (infra/federation.py: N centres and a
gateway), then:

1. broker restart: submits ``--in-flight`` requests while the broker is SIGKILLed (they wait in the
   gateway's outbox), starts the broker again on the same data directory, and prints the seconds from
   "broker ready" until (a) every centre that was sent work has had its first request settled -- its
   inbox consumer, its relay and the gateway's status consumer all work again --, (b) the gateway's
   catalog feed has applied a capability revised after the restart, and (c) every in-flight request is
   settled;
2. dead centre: kills the centre ranked first for the demo need (declared response SLA ``--sla``
   seconds), submits requests until ``--backlog`` of them are assigned to it, and prints the seconds from
   the last one's deadline (+ the gateway's skew margin) until every one of them is settled elsewhere.

Figures are printed as ranges over the runs (docs/failover.md quotes them); nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from infra.devstack import KafkaBroker
from infra.faults import (IN_FLIGHT, first_settled_per_centre, high_pressure_need, kill_broker, submit_many,
                          wait_settled)
from infra.federation import SEED_DIR, Federation, TenantGateway
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq

# The first three share out infra.faults.MIXED_NEEDS; a high-pressure need goes to sh-h2-storage first and
# can fail over to hz-oil-gas.
CENTRES = ("hz-oil-gas", "cz-rail", "sh-h2-storage", "hf-nev-energy", "sh-marine-power")
SKEW_SECONDS = 1.0
SWEEP_SECONDS = 1.0


def start_federation(broker: KafkaBroker, workdir: Path, centres: tuple[str, ...],
                     centre_env: dict[str, dict[str, str]] | None = None) -> tuple[Federation, object]:
    fed = Federation(broker.bootstrap, workdir, broker.ca, extra_env={
        "METROFED_SILENCE_SECONDS": "3600", "METROFED_CLOCK_SKEW_SECONDS": str(SKEW_SECONDS),
        "METROFED_SWEEP_SECONDS": str(SWEEP_SECONDS), "LOG_LEVEL": "WARNING"})
    for c in centres:
        fed.start_centre(SEED_DIR / f"{c}.yaml", env=(centre_env or {}).get(c))
    fed.wait_ready(*[f"centre-{c}" for c in centres], timeout=180)
    fed.start_gateway()
    fed.wait_ready("gateway", timeout=180)
    stub = TenantGateway(fed)  # each enterprise with its own credential
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            res = stub.SearchCatalog(gw.SearchCatalogRequest(limit=1), timeout=5)
            if len({c.value for f in res.facets if f.name == "centre" for c in f.counts}) >= len(centres):
                break
        except Exception:  # noqa: BLE001 - not serving yet
            pass
        time.sleep(0.2)
    return fed, stub


def ca_of(broker: KafkaBroker):
    return broker.ca.ca_cert_path if broker.ca is not None else None


def start_broker(workdir: Path) -> KafkaBroker:
    """Secured as `make run` is (TLS, client certificates, ACLs): reconnecting includes the TLS handshake."""
    broker = KafkaBroker(workdir / "kafka", pki_home=workdir)
    broker.start(timeout=120)
    ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS, security=broker.admin_security)
    return broker


def catalog_probe(fed: Federation, stub, centre_id: str, since: float, timeout: float = 60) -> float | None:
    """Revises one capability at ``centre_id`` and returns the seconds from ``since`` until the gateway's
    search shows the new version (None after ``timeout``)."""
    centre = fed.centre_as(centre_id)
    deadline = time.monotonic() + timeout
    revised = None
    while revised is None and time.monotonic() < deadline:
        try:
            cap = centre.ListCapabilities(cs.ListCapabilitiesRequest(), timeout=5).capabilities[0]
            revised = centre.ReviseCapability(cs.ReviseCapabilityRequest(capability=cap), timeout=15).capability
        except Exception:  # noqa: BLE001 - the centre's database is fine; a slow call is retried
            time.sleep(0.2)
    while revised is not None and time.monotonic() < deadline:
        try:
            hits = stub.SearchCatalog(gw.SearchCatalogRequest(centre_id=centre_id, limit=200), timeout=5).hits
            if any(h.capability.capability_id == revised.capability_id and h.capability.version >= revised.version
                   for h in hits):
                return time.monotonic() - since
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.1)
    return None


def broker_restart_run(workdir: Path, centres: tuple[str, ...], n: int) -> dict:
    broker = start_broker(workdir)
    fed = None
    try:
        fed, stub = start_federation(broker, workdir / "fed", centres)
        warm = submit_many(stub, 10, prefix="warm")
        wait_settled(stub, warm, timeout=60)
        kill_broker(broker)
        batch = submit_many(stub, n, prefix="restart")
        down_at = time.monotonic()
        broker.start(timeout=120)
        ready = time.monotonic()
        consumers = first_settled_per_centre(stub, batch, timeout=120, since=ready)
        catalog = catalog_probe(fed, stub, centres[0], since=ready)
        _view, all_settled = wait_settled(stub, batch, timeout=180, since=ready)
        return {"broker_down_to_ready": ready - down_at, "every_centre_chain": max(consumers.values(), default=None),
                "per_centre": consumers, "catalog_feed": catalog, "all_in_flight_settled": all_settled}
    finally:
        if fed is not None:
            fed.stop()
        broker.stop()


def dead_centre_run(workdir: Path, centres: tuple[str, ...], backlog: int, sla: float) -> dict:
    broker = start_broker(workdir)
    fed = None
    try:
        env = {c: {"METROFED_RESPONSE_SLA_SECONDS": str(int(sla))} for c in centres}
        fed, stub = start_federation(broker, workdir / "fed", centres, env)
        need = high_pressure_need()
        victim = stub.RouteNeed(gw.RouteNeedRequest(need=need), timeout=10).decision.candidates[0].centre_id
        fed.kill(f"centre-{victim}")
        mine: list[str] = []
        others = 0
        batches = []
        while len(mine) < backlog and others < 10 * backlog:
            batch = submit_many(stub, min(100, backlog - len(mine)), need, prefix="dead")
            batches.append(batch)
            for request_id, centre in batch.first_centre.items():
                if centre == victim:
                    mine.append(request_id)
                else:
                    others += 1
        due = time.monotonic() + sla + SKEW_SECONDS  # the last submission's deadline + margin
        ids = set(mine)
        moved, outcomes = None, {}
        deadline = due + 300
        while time.monotonic() < deadline:
            views = [r for b in batches for r in stub.ListRequests(
                gw.ListRequestsRequest(enterprise_id=b.enterprises[0], limit=500), timeout=30).requests
                if r.request_id in ids]
            if len(views) == len(ids) and all(r.state not in IN_FLIGHT and r.assigned_centre_id != victim
                                              or r.state == rq.REQUEST_STATE_UNROUTABLE for r in views):
                moved = time.monotonic() - due
                outcomes = {rq.RequestState.Name(r.state): 0 for r in views}
                for r in views:
                    outcomes[rq.RequestState.Name(r.state)] += 1
                break
            time.sleep(0.2)
        return {"victim": victim, "backlog": len(mine), "moved_and_settled_after_due": moved, "outcomes": outcomes}
    finally:
        if fed is not None:
            fed.stop()
        broker.stop()


def span(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.1f} s"
    return f"{min(values):.1f}–{max(values):.1f} s (median {statistics.median(values):.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--centres", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=300)
    parser.add_argument("--sla", type=float, default=5.0, help="declared response SLA of every centre (s)")
    parser.add_argument("--skip-restart", action="store_true")
    parser.add_argument("--skip-dead-centre", action="store_true")
    args = parser.parse_args(argv)
    centres = CENTRES[:max(2, min(args.centres, len(CENTRES)))]
    os.environ.setdefault("KAFKA_LOG_LEVEL", "ERROR")
    restarts, deads = [], []
    with tempfile.TemporaryDirectory(prefix="metrofed-recovery-") as tmp:
        for run in range(args.runs):
            if not args.skip_restart:
                r = broker_restart_run(Path(tmp) / f"restart-{run}", centres, args.in_flight)
                restarts.append(r)
                print(f"run {run + 1}: broker restart — ready after {r['broker_down_to_ready']:.1f} s down; then "
                      f"every centre's chain {r['every_centre_chain']}, catalog feed {r['catalog_feed']}, "
                      f"all {args.in_flight} in flight settled {r['all_in_flight_settled']} "
                      f"(per centre: { {k: round(v, 1) for k, v in r['per_centre'].items()} })", flush=True)
            if not args.skip_dead_centre:
                d = dead_centre_run(Path(tmp) / f"dead-{run}", centres, args.backlog, args.sla)
                deads.append(d)
                print(f"run {run + 1}: dead centre {d['victim']} — backlog {d['backlog']} moved and settled "
                      f"{d['moved_and_settled_after_due']} s after its deadline + margin: {d['outcomes']}", flush=True)
    print(f"\n{len(centres)} centres, sweep every {SWEEP_SECONDS:g} s, skew margin {SKEW_SECONDS:g} s, {args.runs} runs")
    if restarts:
        print(f"after a broker restart (seconds from the broker being ready), {args.in_flight} requests in flight:")
        print(f"  every centre's inbox → relay → gateway status chain working: {span(r['every_centre_chain'] for r in restarts)}")
        print(f"  gateway catalog feed applying a new revision:                {span(r['catalog_feed'] for r in restarts)}")
        print(f"  every in-flight request settled:                             {span(r['all_in_flight_settled'] for r in restarts)}")
    if deads:
        print(f"dead centre, backlog {deads[0]['backlog']} (SLA {args.sla:g} s): all moved and settled elsewhere "
              f"{span(d['moved_and_settled_after_due'] for d in deads)} after the last deadline + margin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
