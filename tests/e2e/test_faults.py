"""The fault suite: SIGKILL of the broker, of a centre and of the gateway while requests are being submitted,
and a centre dead past its response SLA that then comes back (docs/failover.md).

Each test prints and asserts: 0 lost (every submitted request settles: accepted, unroutable, ...), 0
accepted at two centres and 0 held by a centre the gateway does not assign it to (read from each
centre's own database), 0 partitions stuck (the last requests, submitted after recovery, settle too);
the time to recover is printed, not asserted.

The default variants submit a few hundred requests; the heavy ones (1,000 in flight) carry the ``fault``
marker and run with ``pytest -m fault tests/e2e/test_faults.py``. The module has its own broker and
federation: killing the session broker would disturb every other end-to-end test.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import grpc
import pytest

from infra.devstack import KafkaBroker
from infra.faults import (MIXED_NEEDS, Batch, audit, high_pressure_need, kill_broker, pressure_need, snapshot, submit_many, wait_consistent,
                          wait_settled)
from infra.federation import SEED_DIR, Federation, TenantGateway
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import E2E_CENTRES, wait_for_catalog

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LIGHT, HEAVY = 150, 1000
SIZES = [LIGHT, pytest.param(HEAVY, marks=pytest.mark.fault)]
SETTLE_SECONDS = 240  # bound of every wait; a recovery within it is printed


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    b = KafkaBroker(tmp_path_factory.mktemp("kafka-faults"), pki_home=pki.home)  # the session's CA
    try:
        b.start(timeout=120)
        ensure_topics(b.bootstrap, topics.FEDERATION_TOPICS, security=b.admin_security)
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def fed(broker, tmp_path_factory):
    f = Federation(broker.bootstrap, tmp_path_factory.mktemp("federation-faults"), broker.ca, extra_env={
        # long enough that no fault here makes the gateway give up on a live centre; the dead-centre test
        # declares a short one for its centre
        "METROFED_SILENCE_SECONDS": "600", "METROFED_CLOCK_SKEW_SECONDS": "1", "METROFED_SWEEP_SECONDS": "1",
        "LOG_LEVEL": "WARNING"})
    try:
        for c in E2E_CENTRES:
            f.start_centre(SEED_DIR / f"{c}.yaml")
        f.wait_ready(*[f"centre-{c}" for c in E2E_CENTRES], timeout=180)
        f.start_gateway()
        f.wait_ready("gateway", timeout=180)
        wait_for_catalog(TenantGateway(f), len(E2E_CENTRES), timeout=60)
        yield f
    finally:
        f.stop()


_tenants: dict[int, TenantGateway] = {}


def stub_of(fed: Federation) -> TenantGateway:
    """The gateway, each enterprise calling with its own credential; while a restarted gateway has not
    announced its new port yet, the old one (the call fails UNAVAILABLE and is retried)."""
    return _tenants.setdefault(id(fed), TenantGateway(fed))


class Submitter(threading.Thread):
    """Submits ``n`` requests from a few threads while a fault happens. Each request has an idempotency
    key, and an answer that did not arrive (gateway dead, UNAVAILABLE) is retried under the same key until
    the gateway answers: the enterprise's own way to be sure nothing is submitted twice or not at all."""

    def __init__(self, fed: Federation, n: int, prefix: str, workers: int = 4):
        super().__init__(daemon=True)
        self.fed, self.n, self.prefix, self.workers = fed, n, prefix, workers
        self.ids: list[str] = []
        self.enterprise = f"{prefix}-{time.time_ns()}"
        self.done = threading.Event()
        self.submitted = 0
        self.errors = 0
        self._lock = threading.Lock()

    def _one(self, i: int) -> None:
        need = MIXED_NEEDS[i % len(MIXED_NEEDS)]
        key = f"{self.enterprise}-{i}"
        enterprise = f"{self.enterprise}-{i // 400}"
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                res = stub_of(self.fed).SubmitRequest(
                    gw.SubmitRequestRequest(enterprise_id=enterprise, need=need, idempotency_key=key), timeout=15)
                with self._lock:
                    self.ids.append(res.request.request_id)
                    self.submitted += 1
                return
            except grpc.RpcError:
                with self._lock:
                    self.errors += 1
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def run(self) -> None:
        def worker(k: int) -> None:
            for i in range(k, self.n, self.workers):
                self._one(i)

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(self.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.done.set()

    def wait_submitted(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.submitted < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def batch(self) -> Batch:
        assert self.done.wait(SETTLE_SECONDS), f"submissions did not finish: {self.submitted}/{self.n}"
        assert len(self.ids) == self.n, f"{len(self.ids)} of {self.n} submitted"
        return Batch(self.prefix, list(self.ids), [f"{self.enterprise}-{k}" for k in range((self.n - 1) // 400 + 1)])


def check(fed: Federation, batch: Batch, what: str, recovered_at: float) -> None:
    """Every request settles, nobody holds work twice or without the gateway's assignment, and a fresh
    request after the fault flows through every stage (no partition stuck)."""
    stub = stub_of(fed)
    view, settled = wait_settled(stub, batch, timeout=SETTLE_SECONDS, since=recovered_at)
    result = wait_consistent(stub, batch, fed.workdir / "db", timeout=60)
    # after the fault: one more small batch must pass through every partition of the status topic and
    # every inbox that gets work
    probe = submit_many(stub, 30, prefix=f"{what}-probe")
    probe_view, _ = wait_settled(stub, probe, timeout=SETTLE_SECONDS)
    states: dict[str, int] = {}
    for r in view.values():
        states[rq.RequestState.Name(r.state)] = states.get(rq.RequestState.Name(r.state), 0) + 1
    print(f"\n{what}: {len(batch.ids)} requests; settled {settled if settled is None else round(settled, 1)} s after "
          f"recovery; {result.summary()}; states {states}")
    assert not result.lost, f"{len(result.lost)} never settled, e.g. {[view.get(i) for i in result.lost[:3]]}"
    assert not result.doubled, f"accepted at two centres: {dict(list(result.doubled.items())[:5])}"
    assert not result.stray, f"held by a centre the gateway does not assign: {dict(list(result.stray.items())[:5])}"
    stuck = [i for i in probe.ids if i not in probe_view or probe_view[i].state in (
        rq.REQUEST_STATE_ROUTED, rq.REQUEST_STATE_SUBMITTED, rq.REQUEST_STATE_DECLINED)]
    assert not stuck, f"{len(stuck)} probe requests stuck after {what}"


@pytest.mark.parametrize("n", SIZES)
def test_broker_sigkill_under_load_loses_and_doubles_nothing(fed, broker, n):
    sub = Submitter(fed, n, "broker-kill")
    sub.start()
    sub.wait_submitted(n // 3)
    kill_broker(broker)
    time.sleep(2)  # submissions go on meanwhile: they wait in the gateway's outbox
    broker.start(timeout=120)
    ready = time.monotonic()
    check(fed, sub.batch(), "broker SIGKILL", recovered_at=ready)


@pytest.mark.parametrize("n", SIZES)
def test_centre_sigkill_under_load_loses_and_doubles_nothing(fed, n):
    target = stub_of(fed).RouteNeed(gw.RouteNeedRequest(need=pressure_need()), timeout=10).decision
    name = f"centre-{target.candidates[0].centre_id}"
    sub = Submitter(fed, n, "centre-kill")
    sub.start()
    sub.wait_submitted(n // 3)
    fed.kill(name)
    time.sleep(2)
    fed.restart(name)
    fed.wait_ready(name, timeout=120)
    ready = time.monotonic()
    check(fed, sub.batch(), f"{name} SIGKILL", recovered_at=ready)


@pytest.mark.parametrize("n", SIZES)
def test_gateway_sigkill_under_load_loses_and_doubles_nothing(fed, n):
    sub = Submitter(fed, n, "gateway-kill")
    sub.start()
    sub.wait_submitted(n // 3)
    fed.kill("gateway")
    time.sleep(1)
    fed.restart("gateway")
    fed.wait_ready("gateway", timeout=180)
    ready = time.monotonic()
    check(fed, sub.batch(), "gateway SIGKILL", recovered_at=ready)


def inbox_states(db: Path, ids: list[str]) -> dict[str, str]:
    """The centre's own view of these requests (its SQLite inbox)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(ids))
        return dict(con.execute(f"SELECT request_id, state FROM inbox WHERE request_id IN ({marks})", ids))
    finally:
        con.close()


def wait_for(read, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_a_centre_dead_past_its_sla_comes_back_and_takes_up_nothing_that_moved(fed):
    stub = stub_of(fed)
    need = high_pressure_need()  # two centres can: the first, then the other
    victim = stub.RouteNeed(gw.RouteNeedRequest(need=need), timeout=10).decision.candidates[0].centre_id
    name = f"centre-{victim}"
    # The victim declares a 3 s response SLA (its profile reaches the gateway through the catalog).
    fed.stop(name)
    fed.restart(name, env={"METROFED_RESPONSE_SLA_SECONDS": "3"})
    fed.wait_ready(name, timeout=120)
    try:
        fed.kill(name)
        batch = submit_many(stub, 60, need, prefix="dead-centre")
        sent_to_victim = [i for i, c in batch.first_centre.items() if c == victim]
        assert sent_to_victim, "nothing was routed to the dead centre; the test would prove nothing"
        gone_at = time.monotonic()
        view, moved = wait_settled(stub, batch, timeout=SETTLE_SECONDS, since=gone_at)
        assert moved is not None, "the dead centre's requests were not failed over"
        for i in sent_to_victim:
            hist = stub.GetRequest(gw.GetRequestRequest(request_id=i), timeout=10).request.history
            assert any(h.centre_id == victim and "withdrawn from" in h.note for h in hist), hist

        fed.restart(name)  # back, with its old inbox: routed attempts past their deadline, then withdrawals
        fed.wait_ready(name, timeout=120)
        back = time.monotonic()
        late = Batch("dead-centre", sent_to_victim, batch.enterprises)
        inbox = fed.workdir / "db" / f"{victim}.db"
        answered = wait_for(lambda: inbox_states(inbox, sent_to_victim), len(sent_to_victim))
        assert set(answered.values()) == {"declined"}, answered  # each past its deadline: declined, not taken
        result = wait_consistent(stub, batch, fed.workdir / "db", timeout=30)
        view = snapshot(stub, batch)
        print(f"\ndead centre {victim}: {len(sent_to_victim)} of {len(batch.ids)} requests were its; all moved "
              f"{moved:.1f} s after it died (SLA 3 s); after its return: {result.summary()}")
        assert not result.lost and not result.doubled and not result.stray, result
        assert all(view[i].assigned_centre_id != victim for i in late.ids if view[i].state == rq.REQUEST_STATE_ACCEPTED)
        held = audit(view, late, fed.workdir / "db")
        assert not held.stray
        print(f"  back for {time.monotonic() - back:.1f} s, nothing of the moved backlog taken up")
    finally:
        fed.stop(name)
        fed.restart(name, env={"METROFED_RESPONSE_SLA_SECONDS": "600"})
        fed.wait_ready(name, timeout=120)
