"""The centre's use cases against a real database (SQLite and PostgreSQL): every state change and the
event announcing it are written in one transaction, and the inbox handler is idempotent.

Most tests call the handlers directly with a stand-in record (our handler port: topic, partition,
offset, key, value, headers); the last one goes through the real Kafka broker end to end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from metrofed.bus import topics
from metrofed.bus.envelope import WITHDRAWN, unwrap, wrap
from metrofed.bus.failures import PermanentFailure
from metrofed.domain.lifecycle import RequestState
from metrofed.domain.lifecycle import InvalidTransition
from metrofed.errors import Conflict, NotFound
from metrofed.protoconv import state_from_proto
from metrofed.v1 import events_pb2, request_pb2
from services.centre.app import CentreApp
from services.centre.models import CapabilityRow, InboxRow, Outbox, ProcessedEvent
from tests.integration.conftest import committed_offset, record_for, unique, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CENTRE = "hz-oil-gas"
CAP = "pressure-transmitter-cal"  # capacity 300 / month
SMALL_CAP = "subsea-hydrostatic-pressure-test"  # capacity 3 / month


# ---- helpers --------------------------------------------------------------------------------------------

def count(sessions, model, *where) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def outbox_rows(sessions) -> list[Outbox]:
    with sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def status_events(sessions) -> list[events_pb2.RequestStatusChanged]:
    out = []
    for row in outbox_rows(sessions):
        if row.topic == topics.REQUEST_STATUS:
            decoded = unwrap(row.value)
            assert isinstance(decoded.event, events_pb2.RequestStatusChanged)
            out.append(decoded.event)
    return out


def routed(centre_id: str, capability_id: str, *, request_id: str | None = None, attempt: int = 1,
           quantity: int = 1, event_id: str | None = None,
           respond_by: dt.datetime | None = None) -> events_pb2.Envelope:
    need = request_pb2.Need(measurand="pressure", range=request_pb2.MeasuringRange(min=0, max=10, unit="MPa"),
                            tolerance=request_pb2.Tolerance(kind=request_pb2.TOLERANCE_KIND_PERCENT_OF_FULL_SCALE,
                                                            value=0.5),
                            quantity=quantity)
    event = events_pb2.RequestRouted(request_id=request_id or str(uuid.uuid4()), enterprise_id="ent-1",
                                     centre_id=centre_id, capability_id=capability_id, need=need,
                                     attempt=attempt, requested_by="gateway")
    if respond_by is not None:
        event.respond_by.FromDatetime(respond_by)
    return wrap(event, "gateway", event_id=event_id)


def deliver(app: CentreApp, env: events_pb2.Envelope, offset: int = 0) -> None:
    record = record_for(topics.inbox(app.centre_id), env, key=unwrap(env.SerializeToString()).event.request_id,
                        offset=offset)
    app.on_inbox_event(record, unwrap(record.value))


@pytest.fixture
def commits():
    return []


@pytest.fixture
def app(centre_db, seed_by_id, commits) -> CentreApp:
    return CentreApp(seed_by_id[CENTRE].profile, centre_db, on_commit=lambda: commits.append(1))


@pytest.fixture
def caps(seed_by_id):
    return {c.capability_id: c for c in seed_by_id[CENTRE].capabilities}


# ---- capabilities ---------------------------------------------------------------------------------------

def test_publish_revise_withdraw_each_write_the_row_and_exactly_one_outbox_row(app, caps, centre_db, commits):
    cap = caps[CAP]

    published = app.publish(cap)
    assert published.version == 1 and published.centre_id == CENTRE
    with centre_db() as s:
        row = s.get(CapabilityRow, CAP)
        assert (row.version, row.withdrawn) == (1, False)
    rows = outbox_rows(centre_db)
    assert len(rows) == 1
    first = rows[0]
    assert (first.topic, first.key, first.sent_at) == (topics.CAPABILITIES, f"{CENTRE}/{CAP}", None)
    assert first.event_type == "metrofed.v1.CapabilityPublished"
    decoded = unwrap(first.value)
    assert decoded.envelope.event_id == first.event_id
    assert decoded.envelope.producer_centre_id == CENTRE
    assert (decoded.event.capability.capability_id, decoded.event.capability.version) == (CAP, 1)

    revised = app.revise(dataclasses.replace(cap, price_cny=cap.price_cny + 100))
    assert revised.version == 2
    rows = outbox_rows(centre_db)
    assert len(rows) == 2
    ev2 = unwrap(rows[1].value).event.capability
    assert ev2.version == 2
    assert rows[1].event_id != first.event_id
    assert [c.version for c in app.capabilities()] == [2]
    assert app.capabilities()[0].price_cny == cap.price_cny + 100

    app.withdraw(CAP, "retired standard")
    rows = outbox_rows(centre_db)
    assert len(rows) == 3
    tomb = rows[2]
    assert (tomb.topic, tomb.key, tomb.value, tomb.event_type) == (topics.CAPABILITIES, f"{CENTRE}/{CAP}",
                                                                   None, WITHDRAWN)
    with centre_db() as s:
        assert s.get(CapabilityRow, CAP).withdrawn is True
    assert app.capabilities() == []
    assert len(commits) == 3  # the relay is woken after each commit

    # Re-publishing a withdrawn capability continues its version line.
    assert app.publish(cap).version == 3
    assert len(outbox_rows(centre_db)) == 4


def test_rejected_use_cases_write_nothing(app, caps, centre_db, commits):
    app.publish(caps[CAP])
    before = (len(outbox_rows(centre_db)), len(commits))

    with pytest.raises(Conflict):
        app.publish(caps[CAP])  # a duplicate id
    with pytest.raises(NotFound):
        app.revise(caps[SMALL_CAP])  # never published
    with pytest.raises(NotFound):
        app.withdraw("no-such-capability")

    assert (len(outbox_rows(centre_db)), len(commits)) == before
    with centre_db() as s:
        assert s.get(CapabilityRow, CAP).version == 1
        assert s.get(CapabilityRow, SMALL_CAP) is None


def test_a_failure_after_the_row_is_staged_rolls_back_row_and_event(app, caps, centre_db, commits, monkeypatch):
    """The capability row is added to the session first; when the outbox write then fails the
    transaction rolls back, so there is no capability without its event (and no event without it)."""
    import services.centre.app as centre_app

    def broken_add_event(*args, **kwargs):
        raise RuntimeError("disk full while staging the event")

    monkeypatch.setattr(centre_app, "add_event", broken_add_event)
    with pytest.raises(RuntimeError, match="disk full"):
        app.publish(caps[CAP])
    monkeypatch.undo()

    assert count(centre_db, CapabilityRow) == 0
    assert outbox_rows(centre_db) == []
    assert commits == []
    assert app.publish(caps[CAP]).version == 1  # nothing half-written blocks the retry


# ---- the inbox ------------------------------------------------------------------------------------------

def test_routed_request_with_capacity_is_accepted_with_one_status_event(app, caps, centre_db):
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP, quantity=2)
    request_id = unwrap(env.SerializeToString()).event.request_id

    deliver(app, env)

    with centre_db() as s:
        row = s.get(InboxRow, request_id)
        assert (row.state, row.attempt, row.quantity, row.capability_id) == ("accepted", 1, 2, CAP)
        assert s.get(ProcessedEvent, env.event_id).topic == topics.inbox(CENTRE)
    assert count(centre_db, InboxRow) == 1
    statuses = status_events(centre_db)
    assert len(statuses) == 1
    st = statuses[0]
    assert (st.request_id, st.centre_id, st.attempt) == (request_id, CENTRE, 1)
    assert state_from_proto(st.state) is RequestState.ACCEPTED
    status_row = [r for r in outbox_rows(centre_db) if r.topic == topics.REQUEST_STATUS][0]
    assert status_row.key == request_id and status_row.sent_at is None


def test_routed_request_for_a_withdrawn_capability_is_declined(app, caps, centre_db):
    app.publish(caps[CAP])
    app.withdraw(CAP)
    env = routed(CENTRE, CAP)
    deliver(app, env)
    # and one for a capability this centre never had
    deliver(app, routed(CENTRE, "never-offered"))

    assert [row.state for row in app.inbox()] == ["declined", "declined"]
    statuses = status_events(centre_db)
    assert [state_from_proto(s.state) for s in statuses] == [RequestState.DECLINED] * 2
    assert all(s.note == "capability no longer offered" for s in statuses)


def test_capacity_is_counted_per_month_and_exhaustion_declines(app, caps, centre_db):
    app.publish(caps[SMALL_CAP])  # 3 items a month
    assert caps[SMALL_CAP].capacity_per_month == 3

    deliver(app, routed(CENTRE, SMALL_CAP, quantity=2))  # 2 of 3
    deliver(app, routed(CENTRE, SMALL_CAP, quantity=2))  # 4 > 3: declined
    deliver(app, routed(CENTRE, SMALL_CAP, quantity=1))  # 3 of 3: still fits

    statuses = status_events(centre_db)
    assert [state_from_proto(s.state) for s in statuses] == [RequestState.ACCEPTED, RequestState.DECLINED,
                                                              RequestState.ACCEPTED]
    assert statuses[1].note == "no capacity left this month"
    assert sorted(r.state for r in app.inbox()) == ["accepted", "accepted", "declined"]


def test_without_auto_accept_the_request_waits_as_received(centre_db, seed_by_id, caps):
    profile = dataclasses.replace(seed_by_id[CENTRE].profile, auto_accept=False)
    app = CentreApp(profile, centre_db)
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP)
    deliver(app, env)
    (st,) = status_events(centre_db)
    assert state_from_proto(st.state) is RequestState.RECEIVED
    request_id = st.request_id
    app.accept(request_id)
    assert [state_from_proto(s.state) for s in status_events(centre_db)] == [RequestState.RECEIVED,
                                                                              RequestState.ACCEPTED]


def test_the_same_event_delivered_twice_changes_nothing_the_second_time(app, caps, centre_db, commits):
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP)
    deliver(app, env, offset=7)
    snapshot = (count(centre_db, InboxRow), count(centre_db, ProcessedEvent), len(outbox_rows(centre_db)))
    with centre_db() as s:
        updated = s.get(InboxRow, unwrap(env.SerializeToString()).event.request_id).updated_at

    deliver(app, env, offset=8)  # a redelivery after a crash before the offset commit

    assert (count(centre_db, InboxRow), count(centre_db, ProcessedEvent), len(outbox_rows(centre_db))) == snapshot
    assert snapshot == (1, 1, 2)  # capability event + one status event
    with centre_db() as s:
        assert s.get(InboxRow, unwrap(env.SerializeToString()).event.request_id).updated_at == updated


def test_the_same_request_under_another_event_id_and_same_attempt_changes_nothing(app, caps, centre_db):
    app.publish(caps[CAP])
    first = routed(CENTRE, CAP, quantity=1)
    request_id = unwrap(first.SerializeToString()).event.request_id
    deliver(app, first)
    again = routed(CENTRE, CAP, request_id=request_id, attempt=1, quantity=5)  # a re-send, new event id
    assert again.event_id != first.event_id

    deliver(app, again)

    assert count(centre_db, InboxRow) == 1
    with centre_db() as s:
        row = s.get(InboxRow, request_id)
        assert (row.state, row.quantity, row.attempt) == ("accepted", 1, 1)
    assert len(status_events(centre_db)) == 1


def test_cancellation_moves_an_open_request_to_cancelled_once(app, caps, centre_db):
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP)
    request_id = unwrap(env.SerializeToString()).event.request_id
    deliver(app, env)
    cancel = wrap(events_pb2.RequestCancelled(request_id=request_id, centre_id=CENTRE, reason="not needed"),
                  "gateway")
    deliver(app, cancel)
    deliver(app, cancel)
    with centre_db() as s:
        row = s.get(InboxRow, request_id)
        assert (row.state, row.note) == ("cancelled", "not needed")
    assert count(centre_db, ProcessedEvent) == 2


def cancel_event(request_id: str, attempt: int, reason_code=events_pb2.CANCEL_REASON_FAILOVER) -> events_pb2.Envelope:
    return wrap(events_pb2.RequestCancelled(request_id=request_id, centre_id=CENTRE, reason=f"withdrawn {attempt}",
                                            attempt=attempt, reason_code=reason_code), "gateway")


def test_an_attempt_arriving_after_its_response_deadline_is_declined_not_accepted(app, caps, centre_db):
    app.publish(caps[CAP])
    now = dt.datetime.now(dt.timezone.utc)
    late = routed(CENTRE, CAP, respond_by=now - dt.timedelta(seconds=1))
    in_time = routed(CENTRE, CAP, respond_by=now + dt.timedelta(minutes=5))
    deliver(app, late)
    deliver(app, in_time)
    by_request = {e.request_id: e for e in status_events(centre_db)}
    late_status = by_request[unwrap(late.SerializeToString()).event.request_id]
    assert state_from_proto(late_status.state) is RequestState.DECLINED
    assert late_status.note.startswith("arrived after its response deadline")
    assert state_from_proto(by_request[unwrap(in_time.SerializeToString()).event.request_id].state) \
        is RequestState.ACCEPTED


def test_a_late_attempt_is_declined_even_where_an_operator_would_decide(centre_db, seed_by_id, caps):
    manual = CentreApp(dataclasses.replace(seed_by_id[CENTRE].profile, auto_accept=False), centre_db)
    manual.publish(caps[CAP])
    env = routed(CENTRE, CAP, respond_by=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    deliver(manual, env)
    request_id = unwrap(env.SerializeToString()).event.request_id
    assert manual.inbox(RequestState.RECEIVED) == []  # never offered to the operator
    with pytest.raises(InvalidTransition):
        manual.accept(request_id)


def test_a_cancel_withdraws_only_the_attempt_it_names(app, caps, centre_db):
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP, attempt=2)
    request_id = unwrap(env.SerializeToString()).event.request_id
    deliver(app, env)
    deliver(app, cancel_event(request_id, 1))  # an older attempt's withdrawal: not this one
    with centre_db() as s:
        assert s.get(InboxRow, request_id).state == "accepted"
    deliver(app, cancel_event(request_id, 2, events_pb2.CANCEL_REASON_SUPERSEDED))
    with centre_db() as s:
        row = s.get(InboxRow, request_id)
        assert (row.state, row.note) == ("cancelled", "withdrawn 2")


def test_a_cancel_after_a_late_decline_keeps_the_decline(app, caps, centre_db):
    app.publish(caps[CAP])
    env = routed(CENTRE, CAP, respond_by=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    request_id = unwrap(env.SerializeToString()).event.request_id
    deliver(app, env)
    deliver(app, cancel_event(request_id, 1))  # the gateway's failover withdrawal, right behind it
    with centre_db() as s:
        assert s.get(InboxRow, request_id).state == "declined"


def permanent(call) -> PermanentFailure:
    with pytest.raises(PermanentFailure) as info:
        call()
    return info.value


def test_a_tombstone_or_foreign_event_on_the_inbox_is_a_permanent_failure(app, centre_db):
    """The consumer loop dead-letters these (tests/integration/test_dead_letters.py); nothing is written."""
    env = wrap(events_pb2.RequestRouted(), "x")
    assert permanent(lambda: app.on_inbox_event(record_for(topics.inbox(CENTRE), env), None)).code == "invalid"
    status = wrap(events_pb2.RequestStatusChanged(request_id="r", centre_id=CENTRE), "x")
    assert permanent(lambda: deliver(app, status)).code == "unexpected-type"
    assert count(centre_db, ProcessedEvent) == 0
    assert count(centre_db, InboxRow) == 0


@pytest.mark.parametrize("change, code", [
    (dict(request_id="r" * 65), "invalid"),
    (dict(request_id="nul\x00id"), "invalid"),
    (dict(request_id=""), "invalid"),
    (dict(centre_id="another-centre"), "misaddressed"),
    (dict(enterprise_id="e" * 101), "invalid"),
    (dict(attempt=0), "invalid"),
])
def test_a_routed_request_that_can_never_be_handled_is_a_permanent_failure(app, caps, centre_db, change, code):
    env = routed(CENTRE, CAP)
    event = unwrap(env.SerializeToString()).event
    for field, value in change.items():
        setattr(event, field, value)
    env.payload = event.SerializeToString()
    assert permanent(lambda: deliver(app, env)).code == code
    assert count(centre_db, InboxRow) == 0
    assert status_events(centre_db) == []


def test_a_cancel_for_a_request_never_routed_here_is_a_permanent_failure(app, centre_db):
    env = wrap(events_pb2.RequestCancelled(request_id=str(uuid.uuid4()), centre_id=CENTRE), "gateway")
    assert permanent(lambda: deliver(app, env)).code == "unknown-request"
    assert count(centre_db, ProcessedEvent) == 0


@pytest.mark.parametrize("capability_id, need_change, why", [
    ("Not A Capability!", {}, "capability_id: "),
    ("x" * 61, {}, "capability_id: "),
    (None, dict(range=request_pb2.MeasuringRange(min=0, max=10, unit="megapascalz")), "the need is invalid: need.range.unit"),
    (None, dict(range=request_pb2.MeasuringRange(min=30, max=10, unit="MPa")), "the need is invalid: need.range"),
])
def test_a_routed_request_the_centre_can_never_satisfy_is_declined_with_the_reason(app, caps, centre_db,
                                                                                    capability_id, need_change, why):
    env = routed(CENTRE, CAP)
    event = unwrap(env.SerializeToString()).event
    if capability_id is not None:
        event.capability_id = capability_id
    for field, value in need_change.items():
        getattr(event.need, field).CopyFrom(value)
    env.payload = event.SerializeToString()
    deliver(app, env)
    (row,) = app.inbox()
    assert (row.request_id, row.state) == (event.request_id, "declined")
    assert row.note.startswith(why), row.note
    (ev,) = status_events(centre_db)
    assert (state_from_proto(ev.state), ev.attempt, ev.request_id) == (RequestState.DECLINED, 1, event.request_id)
    assert ev.note == row.note


# ---- through the real broker ----------------------------------------------------------------------------

def test_inbox_consumer_over_kafka_handles_a_redelivered_request_once(kafka, kafka_admin, producer, centre_db,
                                                                      seed_by_id, caps):
    """A RequestRouted sent twice (same event id: the gateway's relay re-sent it) through the real
    broker into a real ConsumerLoop: one inbox row, one status event, both offsets committed. The centre's
    side runs as the centre's own principal with only its ACLs, as in a deployment."""
    from metrofed.bus import acls, tracing
    from metrofed.bus.admin import ensure_topics
    from metrofed.bus.consumer import ConsumerLoop, make_consumer
    from tests.integration.conftest import delete_topics

    centre_id = unique("c")
    profile = dataclasses.replace(seed_by_id[CENTRE].profile, centre_id=centre_id)
    app = CentreApp(profile, centre_db)
    app.publish(caps[CAP])
    inbox_topic = topics.inbox(centre_id)
    group = f"centre-{centre_id}"
    acls.grant_centre(kafka.bootstrap, kafka_admin, centre_id)
    as_centre = kafka.security_for(group)
    ensure_topics(kafka.bootstrap, [topics.inbox_spec(centre_id)], security=as_centre)
    loop = None
    try:
        env = routed(centre_id, CAP)
        request_id = unwrap(env.SerializeToString()).event.request_id
        for _ in range(2):
            span, headers = tracing.start_producer_span(inbox_topic, request_id, env.event_id, env.event_type, {})
            producer.send(inbox_topic, key=request_id.encode(), value=env.SerializeToString(),
                          headers=headers).get(timeout=15)
            span.end()

        loop = ConsumerLoop(make_consumer(kafka.bootstrap, group, group, [inbox_topic], security=as_centre),
                            app.on_inbox_event, group=group, parenting="child", name="inbox").start()
        wait_until(lambda: loop.handled >= 2, 30, what="both deliveries handled")
        wait_until(lambda: committed_offset(kafka.bootstrap, group, inbox_topic, security=kafka_admin) == 2, 15,
                   what="offset 2 committed")
    finally:
        if loop is not None:
            loop.stop()
        delete_topics(kafka.bootstrap, [inbox_topic], kafka_admin)
        acls.revoke_party(kafka.bootstrap, kafka_admin, group)

    rows = app.inbox()
    assert [(r.request_id, r.state) for r in rows] == [(request_id, "accepted")]
    assert len(status_events(centre_db)) == 1
    assert count(centre_db, ProcessedEvent) == 1
