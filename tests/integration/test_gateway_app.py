"""The gateway's use cases against a real database (SQLite and PostgreSQL), with the federated catalog
built from the seed data: routing, failover on decline and on silence, stale and duplicate status
events, idempotent submission, cancellation, and field-naming validation. One test sends the routed
request through the real broker."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, update

from metrofed.bus import topics
from metrofed.bus.envelope import unwrap, wrap
from metrofed.bus.failures import PermanentFailure
from metrofed.db.outbox import utcnow
from metrofed.domain.capability import DomainError
from metrofed.domain.catalog import Catalog
from metrofed.seed import seed_catalog as catalog_of
from metrofed.domain.lifecycle import RequestState
from metrofed.errors import Conflict, NotFound, Unavailable
from metrofed.protoconv import need_from_proto, state_to_proto
from metrofed.v1 import events_pb2, request_pb2
from gateway.app import GatewayApp
from gateway.models import HistoryRow, Outbox, ProcessedEvent, RequestRow
from tests.integration.conftest import record_for, unique

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def pressure_need(**kw) -> request_pb2.Need:
    """0–10 MPa pressure transmitters, ±0.5 % of full scale, calibration: several seed centres can."""
    fields = dict(measurand="pressure transmitter", range=request_pb2.MeasuringRange(min=0, max=10, unit="MPa"),
                  tolerance=request_pb2.Tolerance(kind=request_pb2.TOLERANCE_KIND_PERCENT_OF_FULL_SCALE, value=0.5),
                  service_kind=2, quantity=1)
    fields.update(kw)
    return request_pb2.Need(**fields)


def magnetometer_need() -> request_pb2.Need:
    """1–50 µT, ±2 % of reading, calibration: exactly one seed centre qualifies."""
    return request_pb2.Need(measurand="magnetic flux density",
                            range=request_pb2.MeasuringRange(min=1, max=50, unit="µT"),
                            tolerance=request_pb2.Tolerance(kind=request_pb2.TOLERANCE_KIND_PERCENT_OF_READING,
                                                            value=2),
                            service_kind=2)


@pytest.fixture(scope="module")
def seed_catalog(seed) -> Catalog:
    catalog = catalog_of(seed)
    assert len(catalog.current()) == sum(len(c.capabilities) for c in seed) == 250
    return catalog


@pytest.fixture
def commits():
    return []


@pytest.fixture
def gw(seed_catalog, gateway_db, commits) -> GatewayApp:
    return GatewayApp(seed_catalog, gateway_db, on_commit=lambda: commits.append(1), load_ttl_seconds=0)


# ---- helpers --------------------------------------------------------------------------------------------

def outbox(sessions) -> list[Outbox]:
    with sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def history(gw: GatewayApp, request_id: str) -> list[tuple[str, str]]:
    return [(h.state, h.centre_id) for h in gw.get(request_id)[1]]


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def status(gw: GatewayApp, request_id: str, centre_id: str, state: RequestState, attempt: int,
           note: str = "", event_id: str | None = None) -> events_pb2.Envelope:
    env = wrap(events_pb2.RequestStatusChanged(request_id=request_id, centre_id=centre_id,
                                               state=state_to_proto(state), note=note, attempt=attempt),
               centre_id, event_id=event_id)
    gw.on_status_event(record_for(topics.REQUEST_STATUS, env, key=request_id),
                       unwrap(env.SerializeToString()))
    return env


def routed_events(sessions) -> list[tuple[Outbox, events_pb2.RequestRouted]]:
    return [(r, unwrap(r.value).event) for r in outbox(sessions) if r.event_type == "metrofed.v1.RequestRouted"]


# ---- submit and route -----------------------------------------------------------------------------------

def test_submit_routes_to_the_best_candidate_and_stages_request_routed(gw, gateway_db, commits):
    need_msg = pressure_need()
    decision = gw.route(need_from_proto(need_msg))
    assert len({c.centre_id for c in decision.candidates}) >= 3
    best = decision.candidates[0]

    row = gw.submit("ent-acme", need_msg)

    assert (row.state, row.attempt) == ("routed", 1)
    assert (row.assigned_centre_id, row.assigned_capability_id) == (best.centre_id, best.capability_id)
    assert row.tried_centres == [best.centre_id]
    stored = request_pb2.RoutingDecision.FromString(row.routing)
    assert stored.candidates[0].centre_id == best.centre_id
    assert request_pb2.Need.FromString(row.need) == need_msg
    assert history(gw, row.request_id) == [("submitted", ""), ("routed", best.centre_id)]
    assert gw.get(row.request_id)[1][1].note == best.explanation

    ((out, ev),) = routed_events(gateway_db)
    assert len(outbox(gateway_db)) == 1
    assert (out.topic, out.key, out.sent_at) == (topics.inbox(best.centre_id), row.request_id, None)
    assert (ev.request_id, ev.enterprise_id, ev.centre_id, ev.capability_id, ev.attempt) == (
        row.request_id, "ent-acme", best.centre_id, best.capability_id, 1)
    assert ev.need == need_msg
    assert commits == [1]
    assert [r.request_id for r in gw.list("ent-acme")] == [row.request_id]


def test_an_unroutable_need_is_recorded_as_a_coverage_gap(gw, gateway_db):
    need_msg = pressure_need(range=request_pb2.MeasuringRange(min=0, max=1000, unit="MPa"))

    row = gw.submit("ent-acme", need_msg)

    assert (row.state, row.attempt, row.assigned_centre_id) == ("unroutable", 0, "")
    hist = gw.get(row.request_id)[1]
    assert [h.state for h in hist] == ["submitted", "unroutable"]
    assert "coverage gap" in hist[-1].note and "1000 MPa" in hist[-1].note
    assert outbox(gateway_db) == []  # nobody to tell


def test_the_catalog_must_be_loaded_before_routing(gateway_db):
    gw = GatewayApp(Catalog(), gateway_db)
    with pytest.raises(Unavailable):
        gw.submit("ent-acme", pressure_need())
    assert count(gateway_db, RequestRow) == 0


def test_idempotency_key_returns_the_same_request(gw, gateway_db):
    first = gw.submit("ent-acme", pressure_need(), idempotency_key="po-4711")
    again = gw.submit("ent-acme", pressure_need(quantity=3), idempotency_key="po-4711")
    other = gw.submit("ent-other", pressure_need(), idempotency_key="po-4711")  # keys are per enterprise

    assert again.request_id == first.request_id
    assert request_pb2.Need.FromString(again.need).quantity == 1  # the first submission stands
    assert other.request_id != first.request_id
    assert count(gateway_db, RequestRow) == 2
    assert len(routed_events(gateway_db)) == 2


# ---- status events --------------------------------------------------------------------------------------

def test_accepted_status_updates_state_and_history(gw, gateway_db, commits):
    row = gw.submit("ent-acme", pressure_need())
    centre = row.assigned_centre_id

    status(gw, row.request_id, centre, RequestState.ACCEPTED, 1, note="accepted automatically")

    got, hist = gw.get(row.request_id)
    assert got.state == "accepted"
    assert (hist[-1].state, hist[-1].centre_id, hist[-1].note) == ("accepted", centre, "accepted automatically")
    assert count(gateway_db, ProcessedEvent) == 1
    assert len(commits) == 2

    status(gw, row.request_id, centre, RequestState.COMPLETED, 1, note="done")
    assert gw.get(row.request_id)[0].state == "completed"


def test_declined_fails_over_to_the_next_centre_and_a_late_status_from_the_first_is_ignored(gw, gateway_db):
    row = gw.submit("ent-acme", pressure_need())
    first = row.assigned_centre_id

    status(gw, row.request_id, first, RequestState.DECLINED, 1, note="no capacity left this month")

    moved, hist = gw.get(row.request_id)
    second = moved.assigned_centre_id
    assert second != first
    assert (moved.state, moved.attempt) == ("routed", 2)
    assert moved.tried_centres == [first, second]
    assert [(h.state, h.centre_id) for h in hist] == [("submitted", ""), ("routed", first), ("declined", first),
                                                       ("routed", second)]
    assert hist[-1].note.startswith(f"failover: declined by {first} (no capacity left this month); ")
    (_, ev1), (out2, ev2) = routed_events(gateway_db)
    assert (ev1.centre_id, ev1.attempt) == (first, 1)
    assert (out2.topic, ev2.centre_id, ev2.attempt, ev2.request_id) == (topics.inbox(second), second, 2,
                                                                         row.request_id)
    assert first not in {c.centre_id for c in request_pb2.RoutingDecision.FromString(moved.routing).candidates}

    # The first centre's late answer (attempt 1) does not change the request; being an accept of work that
    # moved on, it is withdrawn from that centre again (compensation), visibly.
    before = history(gw, row.request_id)
    status(gw, row.request_id, first, RequestState.DECLINED, 1)  # a repeat of its decline: nothing at all
    assert history(gw, row.request_id) == before
    status(gw, row.request_id, first, RequestState.ACCEPTED, 1)
    assert gw.get(row.request_id)[0].state == "routed"
    assert history(gw, row.request_id) == [*before, ("routed", first)]
    assert gw.get(row.request_id)[1][-1].note.startswith("compensation: ")
    assert len(routed_events(gateway_db)) == 2

    # The second centre's answer (attempt 2) is applied.
    status(gw, row.request_id, second, RequestState.ACCEPTED, 2)
    final = gw.get(row.request_id)[0]
    assert (final.state, final.assigned_centre_id, final.attempt) == ("accepted", second, 2)


def test_when_every_candidate_declined_the_request_becomes_unroutable(gw, gateway_db):
    assert len(gw.route(need_from_proto(magnetometer_need())).candidates) == 1  # precondition
    row = gw.submit("ent-acme", magnetometer_need())
    assert row.state == "routed"

    status(gw, row.request_id, row.assigned_centre_id, RequestState.DECLINED, 1, note="instrument broken")

    final, hist = gw.get(row.request_id)
    assert final.state == "unroutable"
    assert [h.state for h in hist] == ["submitted", "routed", "declined", "unroutable"]
    assert hist[-1].note.startswith(f"failover: declined by {row.assigned_centre_id}")
    assert len(routed_events(gateway_db)) == 1


def test_duplicate_status_events_are_ignored(gw, gateway_db):
    row = gw.submit("ent-acme", pressure_need())
    centre = row.assigned_centre_id
    env = status(gw, row.request_id, centre, RequestState.ACCEPTED, 1)
    snapshot = history(gw, row.request_id)

    status(gw, row.request_id, centre, RequestState.ACCEPTED, 1, event_id=env.event_id)  # redelivered
    status(gw, row.request_id, centre, RequestState.ACCEPTED, 1)  # re-sent under a new event id

    assert history(gw, row.request_id) == snapshot
    assert gw.get(row.request_id)[0].state == "accepted"
    assert count(gateway_db, ProcessedEvent) == 2  # the redelivery did not even get a second row
    # A redelivered DECLINED must not fail over twice either.
    row2 = gw.submit("ent-acme", pressure_need())
    declined = status(gw, row2.request_id, row2.assigned_centre_id, RequestState.DECLINED, 1)
    status(gw, row2.request_id, row2.assigned_centre_id, RequestState.DECLINED, 1, event_id=declined.event_id)
    assert gw.get(row2.request_id)[0].attempt == 2
    assert len([ev for _, ev in routed_events(gateway_db) if ev.request_id == row2.request_id]) == 2


def permanent(call) -> PermanentFailure:
    with pytest.raises(PermanentFailure) as info:
        call()
    return info.value


def test_a_status_for_an_unknown_request_or_of_another_kind_is_a_permanent_failure(gw, gateway_db):
    """The consumer loop dead-letters these (tests/integration/test_dead_letters.py); nothing is written."""
    assert permanent(lambda: status(gw, str(uuid.uuid4()), "hz-oil-gas", RequestState.ACCEPTED, 1)).code \
        == "unknown-request"
    other = wrap(events_pb2.RequestCancelled(request_id="x"), "hz-oil-gas")
    assert permanent(lambda: gw.on_status_event(record_for(topics.REQUEST_STATUS, other),
                                                unwrap(other.SerializeToString()))).code == "unexpected-type"
    assert permanent(lambda: gw.on_status_event(record_for(topics.REQUEST_STATUS, other), None)).code == "invalid"
    assert count(gateway_db, RequestRow) == 0
    assert count(gateway_db, HistoryRow) == 0
    assert count(gateway_db, ProcessedEvent) == 0


@pytest.mark.parametrize("request_id, centre_id, state, code", [
    ("r" * 65, "hz-oil-gas", 4, "invalid"),
    ("", "hz-oil-gas", 4, "invalid"),
    ("with\x00nul", "hz-oil-gas", 4, "invalid"),
    (None, "c" * 41, 4, "invalid"),
    (None, "hz-oil-gas", 99, "unknown-state"),
    (None, "hz-oil-gas", 0, "invalid"),
    (None, "hz-oil-gas", 2, "domain-rule"),  # ROUTED: only the gateway routes
    (None, "hz-oil-gas", 10, "domain-rule"),  # FAILED: only the gateway gives up
])
def test_an_invalid_status_event_naming_a_request_never_changes_it(gw, gateway_db, request_id, centre_id, state,
                                                                   code):
    row = gw.submit("ent-acme", pressure_need())
    before = (gw.get(row.request_id)[0].state, history(gw, row.request_id))
    env = wrap(events_pb2.RequestStatusChanged(
        request_id=row.request_id if request_id is None else request_id, centre_id=centre_id, state=state,
        attempt=1), centre_id)
    failure = permanent(lambda: gw.on_status_event(record_for(topics.REQUEST_STATUS, env),
                                                   unwrap(env.SerializeToString())))
    assert failure.code == code
    assert (gw.get(row.request_id)[0].state, history(gw, row.request_id)) == before
    assert count(gateway_db, ProcessedEvent) == 0


def test_a_decline_after_the_deadline_passed_makes_the_request_failed_not_a_retry_loop(seed_catalog, gateway_db):
    clock = [dt.date(2030, 1, 10)]
    gw = GatewayApp(seed_catalog, gateway_db, today=lambda: clock[0], load_ttl_seconds=0)
    row = gw.submit("ent-acme", pressure_need(deadline="2030-01-12"))
    first = row.assigned_centre_id
    clock[0] = dt.date(2030, 1, 13)  # the centre answers after the deadline

    status(gw, row.request_id, first, RequestState.DECLINED, 1, note="instrument broken")

    failed, hist = gw.get(row.request_id)
    assert (failed.state, failed.attempt, failed.assigned_centre_id) == ("failed", 1, first)
    assert [h.state for h in hist] == ["submitted", "routed", "declined", "failed"]
    assert "need.deadline" in hist[-1].note and "in the past" in hist[-1].note
    assert hist[-1].note.startswith(f"failover: declined by {first} (instrument broken); ")
    assert len(routed_events(gateway_db)) == 1  # not routed anywhere else
    # Visible and not terminal: the enterprise can still cancel it.
    assert gw.cancel(row.request_id, "too late").state == "cancelled"


def test_the_silence_sweeper_fails_a_request_whose_deadline_passed_once_and_moves_on(seed_catalog, gateway_db):
    clock = [dt.date(2030, 1, 10)]
    wall = Clock()  # the response deadlines' clock
    gw = GatewayApp(seed_catalog, gateway_db, today=lambda: clock[0], load_ttl_seconds=0, clock=wall)
    late = gw.submit("ent-acme", pressure_need(deadline="2030-01-12"))
    other = gw.submit("ent-acme", pressure_need())
    wall.now += dt.timedelta(minutes=10)
    clock[0] = dt.date(2030, 1, 13)

    assert gw.sweep_silent() == 2
    assert gw.get(late.request_id)[0].state == "failed"
    assert (gw.get(other.request_id)[0].state, gw.get(other.request_id)[0].attempt) == ("routed", 2)
    assert gw.sweep_silent() == 0  # nothing left to fail every round


# ---- cancel ---------------------------------------------------------------------------------------------

def test_cancel_emits_request_cancelled_to_the_assigned_centre(gw, gateway_db):
    row = gw.submit("ent-acme", pressure_need())

    cancelled = gw.cancel(row.request_id, "project postponed")

    assert cancelled.state == "cancelled"
    last = outbox(gateway_db)[-1]
    assert (last.topic, last.key, last.event_type) == (topics.inbox(row.assigned_centre_id), row.request_id,
                                                       "metrofed.v1.RequestCancelled")
    ev = unwrap(last.value).event
    assert (ev.request_id, ev.centre_id, ev.reason) == (row.request_id, row.assigned_centre_id, "project postponed")
    assert (ev.attempt, ev.reason_code) == (1, events_pb2.CANCEL_REASON_ENTERPRISE)
    assert history(gw, row.request_id)[-1] == ("cancelled", row.assigned_centre_id)

    with pytest.raises(Conflict):
        gw.cancel(row.request_id)
    with pytest.raises(NotFound):
        gw.cancel(str(uuid.uuid4()))
    assert len(outbox(gateway_db)) == 2
    # A status arriving after the cancellation does not revive the request.
    status(gw, row.request_id, row.assigned_centre_id, RequestState.ACCEPTED, 1)
    assert gw.get(row.request_id)[0].state == "cancelled"


# ---- silence --------------------------------------------------------------------------------------------

class Clock:
    """The gateway's clock, moved by hand (deadlines are judged against it)."""

    def __init__(self):
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def gw_clocked(seed_catalog, gateway_db, commits, clock) -> GatewayApp:
    return GatewayApp(seed_catalog, gateway_db, on_commit=lambda: commits.append(1), load_ttl_seconds=0,
                      default_sla=dt.timedelta(minutes=5), clock_skew=dt.timedelta(seconds=5), clock=clock,
                      sweep_batch=7)


def cancels(sessions) -> list[tuple[str, events_pb2.RequestCancelled]]:
    return [(r.topic, unwrap(r.value).event) for r in outbox(sessions)
            if r.event_type == "metrofed.v1.RequestCancelled"]


def test_routed_request_carries_the_centres_response_deadline(gw_clocked, gateway_db, clock):
    row = gw_clocked.submit("ent-acme", pressure_need())
    (_, ev), = routed_events(gateway_db)
    deadline = ev.respond_by.ToDatetime(tzinfo=dt.timezone.utc)
    assert abs((deadline - (clock.now + dt.timedelta(minutes=5))).total_seconds()) < 1e-3
    with gateway_db() as s:
        assert s.get(RequestRow, row.request_id).respond_by is not None


def test_a_centre_declaring_its_response_sla_gets_that_deadline(seed, gateway_db, clock):
    catalog = catalog_of(seed)
    probe = GatewayApp(catalog, gateway_db, load_ttl_seconds=0, clock=clock)
    first = probe.route(need_from_proto(pressure_need())).candidates[0].centre_id
    catalog.upsert_centre(dataclasses.replace(catalog.current().centres[first], response_sla_seconds=42))
    assert probe.response_sla(first) == dt.timedelta(seconds=42)
    assert probe.response_sla("no-such-centre") == dt.timedelta(seconds=300)  # the default
    probe.submit("ent-acme", pressure_need())
    (_, ev), = routed_events(gateway_db)
    assert ev.centre_id == first
    assert ev.respond_by.ToDatetime(tzinfo=dt.timezone.utc) == clock.now + dt.timedelta(seconds=42)


def test_sweep_waits_for_deadline_plus_skew_then_withdraws_the_attempt_and_fails_over(gw_clocked, gateway_db, clock):
    old = gw_clocked.submit("ent-acme", pressure_need())
    answered = gw_clocked.submit("ent-acme", pressure_need())
    status(gw_clocked, answered.request_id, answered.assigned_centre_id, RequestState.ACCEPTED, 1)

    clock.now += dt.timedelta(minutes=5, seconds=4)  # past the deadline, not past the skew margin
    assert gw_clocked.sweep_silent() == 0
    clock.now += dt.timedelta(seconds=2)
    fresh = gw_clocked.submit("ent-acme", pressure_need())  # routed now: its deadline is ahead
    assert gw_clocked.sweep_silent() == 1

    moved, hist = gw_clocked.get(old.request_id)
    assert (moved.state, moved.attempt) == ("routed", 2)
    assert moved.assigned_centre_id != old.assigned_centre_id
    assert moved.tried_centres == [old.assigned_centre_id, moved.assigned_centre_id]
    assert hist[-2].state == "declined" and hist[-2].note.startswith(
        f"no answer from {old.assigned_centre_id} by its response deadline (attempt 1)")
    assert hist[-1].note.startswith(f"failover: {old.assigned_centre_id} stayed silent; ")
    # The abandoned centre is told, in its own inbox, which attempt it must not take up.
    (topic, cancel), = cancels(gateway_db)
    assert topic == topics.inbox(old.assigned_centre_id)
    assert (cancel.request_id, cancel.centre_id, cancel.attempt, cancel.reason_code) == (
        old.request_id, old.assigned_centre_id, 1, events_pb2.CANCEL_REASON_FAILOVER)
    assert gw_clocked.get(fresh.request_id)[0].attempt == 1
    assert gw_clocked.get(answered.request_id)[0].state == "accepted"
    assert gw_clocked.sweep_silent() == 0  # the new attempt has a new deadline


def test_sweep_moves_the_whole_backlog_in_bounded_batches(gw_clocked, gateway_db, clock, commits):
    rows = [gw_clocked.submit("ent-acme", pressure_need()) for _ in range(23)]  # batches of 7: 7+7+7+2
    clock.now += dt.timedelta(minutes=10)
    commits.clear()
    assert gw_clocked.sweep_silent() == 23
    assert len(commits) == 4  # one transaction (and one relay wake-up) per batch
    assert {gw_clocked.get(r.request_id)[0].attempt for r in rows} == {2}
    assert len(cancels(gateway_db)) == 23


def test_sweep_skips_a_request_whose_failover_fails_and_moves_the_rest(gw_clocked, gateway_db, clock, monkeypatch):
    rows = [gw_clocked.submit("ent-acme", pressure_need()) for _ in range(9)]
    bad = rows[3].request_id
    clock.now += dt.timedelta(minutes=10)
    real = gw_clocked._fail_over

    def flaky(s, row, why):
        if row.request_id == bad:
            raise DomainError("need.deadline", "is in the past")
        return real(s, row, why)

    monkeypatch.setattr(gw_clocked, "_fail_over", flaky)
    assert gw_clocked.sweep_silent() == 8
    assert gw_clocked.get(bad)[0].state == "routed"  # untouched, retried next sweep
    assert bad not in {c.request_id for _, c in cancels(gateway_db)}


def test_a_late_accept_from_an_abandoned_attempt_is_compensated_and_visible(gw_clocked, gateway_db, clock):
    row = gw_clocked.submit("ent-acme", pressure_need())
    first = row.assigned_centre_id
    clock.now += dt.timedelta(minutes=10)
    assert gw_clocked.sweep_silent() == 1
    second = gw_clocked.get(row.request_id)[0].assigned_centre_id

    status(gw_clocked, row.request_id, first, RequestState.ACCEPTED, 1)  # the silent centre comes back

    req, hist = gw_clocked.get(row.request_id)
    assert (req.state, req.attempt, req.assigned_centre_id) == ("routed", 2, second)
    assert hist[-1].centre_id == first and hist[-1].note.startswith(
        f"compensation: {first} reported accepted for attempt 1, which is no longer current")
    failover, superseded = cancels(gateway_db)
    assert failover[1].reason_code == events_pb2.CANCEL_REASON_FAILOVER
    assert superseded[0] == topics.inbox(first)
    assert (superseded[1].attempt, superseded[1].reason_code) == (1, events_pb2.CANCEL_REASON_SUPERSEDED)
    # The current attempt is unaffected and still counts.
    status(gw_clocked, row.request_id, second, RequestState.ACCEPTED, 2)
    assert gw_clocked.get(row.request_id)[0].state == "accepted"
    assert len(cancels(gateway_db)) == 2


def test_an_accept_after_a_failover_that_found_no_one_is_compensated(gw_clocked, gateway_db, clock):
    row = gw_clocked.submit("ent-acme", magnetometer_need())  # exactly one centre can
    centre = row.assigned_centre_id
    clock.now += dt.timedelta(minutes=10)
    assert gw_clocked.sweep_silent() == 1
    assert gw_clocked.get(row.request_id)[0].state == "unroutable"

    status(gw_clocked, row.request_id, centre, RequestState.ACCEPTED, 1)

    req, hist = gw_clocked.get(row.request_id)
    assert req.state == "unroutable"
    assert hist[-1].note.startswith(f"compensation: {centre} reported accepted for attempt 1")
    assert [(c.attempt, c.reason_code) for _, c in cancels(gateway_db)] == [
        (1, events_pb2.CANCEL_REASON_FAILOVER), (1, events_pb2.CANCEL_REASON_SUPERSEDED)]


def test_a_stale_decline_needs_no_compensation(gw_clocked, gateway_db, clock):
    row = gw_clocked.submit("ent-acme", pressure_need())
    clock.now += dt.timedelta(minutes=10)
    gw_clocked.sweep_silent()
    before = len(gw_clocked.get(row.request_id)[1])
    status(gw_clocked, row.request_id, row.assigned_centre_id, RequestState.DECLINED, 1,
           note="arrived after its response deadline")
    assert len(gw_clocked.get(row.request_id)[1]) == before
    assert len(cancels(gateway_db)) == 1  # the failover's only


# ---- validation -----------------------------------------------------------------------------------------

BAD_INPUTS = [
    ("", pressure_need(), "", "enterprise_id"),
    ("   ", pressure_need(), "", "enterprise_id"),
    ("e" * 101, pressure_need(), "", "enterprise_id"),
    ("ent-acme", pressure_need(), "k" * 101, "idempotency_key"),
    ("ent-acme", pressure_need(measurand="", instrument_type=""), "", "need.measurand"),
    ("ent-acme", pressure_need(range=request_pb2.MeasuringRange(min=0, max=10, unit="")), "", "need.range.unit"),
    ("ent-acme", pressure_need(range=request_pb2.MeasuringRange(min=0, max=10, unit="MPaa")), "",
     "need.range.unit"),
    ("ent-acme", pressure_need(range=request_pb2.MeasuringRange(min=10, max=1, unit="MPa")), "",
     "need.range.max"),
    ("ent-acme", pressure_need(tolerance=request_pb2.Tolerance(kind=2, value=0)), "", "need.tolerance.value"),
    ("ent-acme", pressure_need(quantity_kind="smell"), "", "need.quantity_kind"),
    ("ent-acme", pressure_need(deadline="2000-01-01"), "", "need.deadline"),
]


@pytest.mark.parametrize("enterprise_id, need_msg, key, field", BAD_INPUTS,
                         ids=[f"{b[3]}-{i}" for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_raises_domain_error_naming_the_field(gw, gateway_db, enterprise_id, need_msg, key, field):
    with pytest.raises(DomainError) as err:
        gw.submit(enterprise_id, need_msg, idempotency_key=key)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")
    assert count(gateway_db, RequestRow) == 0
    assert outbox(gateway_db) == []


def test_lookups_validate_and_report_missing_requests(gw):
    with pytest.raises(DomainError) as err:
        gw.get("")
    assert err.value.field == "request_id"
    with pytest.raises(DomainError) as err:
        gw.list("ent-acme", limit=-1)
    assert err.value.field == "limit"
    with pytest.raises(NotFound):
        gw.get(str(uuid.uuid4()))


# ---- through the real broker ----------------------------------------------------------------------------

def test_routed_request_reaches_the_centres_inbox_topic(kafka, kafka_admin, producer, gw, gateway_db, topic_reader):
    from metrofed.bus.admin import ensure_topics
    from metrofed.db.outbox import OutboxRelay

    enterprise = unique("ent")
    row = gw.submit(enterprise, pressure_need())
    inbox = topics.inbox(row.assigned_centre_id)
    ensure_topics(kafka.bootstrap, [topics.inbox_spec(row.assigned_centre_id)], security=kafka_admin)
    reader = topic_reader(inbox)

    assert OutboxRelay(gateway_db, Outbox, producer).relay_once() == 1

    (record,) = reader.read(1, match=lambda r: r.key == row.request_id.encode())
    ev = unwrap(record.value).event
    assert isinstance(ev, events_pb2.RequestRouted)
    assert (ev.request_id, ev.enterprise_id, ev.centre_id, ev.attempt) == (row.request_id, enterprise,
                                                                            row.assigned_centre_id, 1)
    assert dict(record.headers)["metrofed-event-type"] == b"metrofed.v1.RequestRouted"
    assert all(r.sent_at is not None for r in outbox(gateway_db))
