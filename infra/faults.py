"""What the fault suite (tests/e2e/test_faults.py) and the recovery benchmark (bench/recovery.py) share:
killing and restarting the broker, submitting many requests, watching them settle, and counting double
assignments from the centres' own databases.

"Settled" is the gateway's view: a request that is no longer waiting for a centre's first answer
(ACCEPTED, RECEIVED, COMPLETED, CANCELLED, UNROUTABLE or any state a newer build adds). A request still
ROUTED or DECLINED (in the middle of a failover) is in flight.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq

IN_FLIGHT = frozenset({rq.REQUEST_STATE_SUBMITTED, rq.REQUEST_STATE_ROUTED, rq.REQUEST_STATE_DECLINED})
HELD = ("accepted", "completed")  # centre inbox states that mean "this centre does the work"
PAGE = 500  # ListRequests answers at most this many per enterprise


def pressure_need(max_mpa: float = 25, percent: float = 0.1, city: str = "无锡") -> rq.Need:
    return rq.Need(instrument_type="pressure transmitter", range=rq.MeasuringRange(min=0, max=max_mpa, unit="MPa"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=percent),
                   city=city, province="江苏")


def torque_need() -> rq.Need:
    return rq.Need(instrument_type="torque wrench", range=rq.MeasuringRange(min=20, max=200, unit="N·m"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=4), city="上海")


def high_pressure_need() -> rq.Need:
    return rq.Need(instrument_type="high-pressure transducer", range=rq.MeasuringRange(min=0, max=100, unit="MPa"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=0.5), city="上海")


# Needs that the e2e centres (tests/e2e/conftest.py E2E_CENTRES) share out between them, so that a batch
# reaches several inboxes.
MIXED_NEEDS = (pressure_need(), torque_need(), high_pressure_need())


def kill_broker(broker) -> None:
    """SIGKILL the broker's process group: no clean shutdown, no flushed state."""
    try:
        os.killpg(broker.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    broker.proc.wait(30)
    broker.proc = None


@dataclass
class Batch:
    """Requests submitted under enterprise ids of at most PAGE requests each, so that ListRequests sees
    them all."""

    prefix: str
    ids: list[str]
    enterprises: list[str]
    first_centre: dict[str, str] = field(default_factory=dict)  # where each was routed at submission


def submit_many(stub, n: int, need: rq.Need | tuple[rq.Need, ...] = MIXED_NEEDS, prefix: str = "fault") -> Batch:
    """``n`` requests; a tuple of needs is used round-robin."""
    needs = need if isinstance(need, tuple) else (need,)
    run = uuid.uuid4().hex[:8]
    ids, enterprises, first = [], [], {}
    for i in range(n):
        enterprise = f"{prefix}-{run}-{i // PAGE}"
        if not enterprises or enterprises[-1] != enterprise:
            enterprises.append(enterprise)
        res = stub.SubmitRequest(gw.SubmitRequestRequest(enterprise_id=enterprise, need=needs[i % len(needs)],
                                                         idempotency_key=f"{run}-{i}"), timeout=30)
        ids.append(res.request.request_id)
        first[res.request.request_id] = res.request.assigned_centre_id
    return Batch(prefix, ids, enterprises, first)


def snapshot(stub, batch: Batch) -> dict[str, rq.ServiceRequest]:
    out = {}
    for enterprise in batch.enterprises:
        for req in stub.ListRequests(gw.ListRequestsRequest(enterprise_id=enterprise, limit=PAGE),
                                     timeout=30).requests:
            out[req.request_id] = req
    return out


def in_flight(requests: dict[str, rq.ServiceRequest]) -> list[str]:
    return [i for i, r in requests.items() if r.state in IN_FLIGHT]


def wait_settled(stub, batch: Batch, timeout: float, since: float | None = None) -> tuple[dict, float | None]:
    """Polls until every request of ``batch`` is settled or ``timeout`` passes. Returns the last view and
    the seconds from ``since`` (default: now) until all were settled (None if they never were)."""
    since = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    view: dict = {}
    while True:
        try:
            view = snapshot(stub, batch)
        except Exception:  # noqa: BLE001 - the gateway may be restarting: keep polling until the deadline
            view = {}
        if len(view) == len(batch.ids) and not in_flight(view):
            return view, time.monotonic() - since
        if time.monotonic() > deadline:
            return view, None
        time.sleep(0.25)


def first_settled_per_centre(stub, batch: Batch, timeout: float, since: float) -> dict[str, float]:
    """Seconds from ``since`` until each assigned centre had its first request of ``batch`` settled: the
    moment that centre's whole chain (gateway relay → inbox consumer → centre relay → status consumer)
    worked again."""
    firsts: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            view = snapshot(stub, batch)
        except Exception:  # noqa: BLE001
            view = {}
        now = time.monotonic() - since
        centres = {r.assigned_centre_id for r in view.values() if r.assigned_centre_id}
        for r in view.values():
            if r.state not in IN_FLIGHT and r.assigned_centre_id not in firsts:
                firsts[r.assigned_centre_id] = now
        if view and centres <= set(firsts):
            return firsts
        time.sleep(0.1)
    return firsts


def centre_holdings(db_dir: Path) -> dict[str, set[str]]:
    """request id → the centres whose own database holds it ACCEPTED or COMPLETED."""
    holders: dict[str, set[str]] = defaultdict(set)
    for path in sorted(db_dir.glob("*.db")):
        if path.stem.startswith("gateway"):
            continue
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name='inbox'").fetchone():
                continue
            for (request_id,) in con.execute(
                    f"SELECT request_id FROM inbox WHERE state IN ({','.join('?' * len(HELD))})", HELD):
                holders[request_id].add(path.stem)
        finally:
            con.close()
    return holders


@dataclass
class Audit:
    lost: list[str]  # never settled
    doubled: dict[str, set[str]]  # accepted at two or more centres
    stray: dict[str, set[str]]  # held by a centre the gateway does not assign it to (or not accepted)

    def summary(self) -> str:
        return f"{len(self.lost)} lost, {len(self.doubled)} accepted at two centres, {len(self.stray)} held elsewhere"


def audit(view: dict[str, rq.ServiceRequest], batch: Batch, db_dir: Path) -> Audit:
    holders = centre_holdings(db_dir)
    lost = [i for i in batch.ids if i not in view or view[i].state in IN_FLIGHT]
    doubled = {i: c for i in batch.ids if len(c := holders.get(i, set())) > 1}
    stray = {}
    for i in batch.ids:
        held = holders.get(i, set())
        req = view.get(i)
        assigned = {req.assigned_centre_id} if req is not None and req.state in (
            rq.REQUEST_STATE_ACCEPTED, rq.REQUEST_STATE_COMPLETED) else set()
        if held - assigned:
            stray[i] = held - assigned
    return Audit(lost, doubled, stray)


def wait_consistent(stub, batch: Batch, db_dir: Path, timeout: float) -> Audit:
    """Compensations travel through the bus: poll until the centres' databases agree with the gateway
    (or ``timeout``), then return the last audit."""
    deadline = time.monotonic() + timeout
    while True:
        result = audit(snapshot(stub, batch), batch, db_dir)
        if (not result.lost and not result.doubled and not result.stray) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)
