"""The outbox relay against the real broker and real databases (SQLite and PostgreSQL): what the app
committed reaches Kafka with its trace and event headers and is then marked sent; when the broker
cannot be reached nothing is marked and nothing is lost."""

from __future__ import annotations

import dataclasses
import re

import pytest
from kafka import KafkaProducer
from opentelemetry import trace
from sqlalchemy import select

from metrofed.bus import topics
from metrofed.bus.envelope import WITHDRAWN, unwrap
from metrofed.bus.producer import make_producer
from metrofed.db.outbox import OutboxRelay
from services.centre.app import CentreApp
from services.centre.models import Outbox
from tests.integration.conftest import unique, wait_until

# Recording spans: the relay only sends a traceparent header when its producer span is a real one.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(90), pytest.mark.usefixtures("span_exporter")]

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
CENTRE = "sh-icv"


def headers_of(record) -> dict[str, bytes]:
    return dict(record.headers or [])


def rows(sessions) -> list[Outbox]:
    with sessions() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


@pytest.fixture
def centre(centre_db, seed_by_id):
    """A centre with a unique id, so its records are told apart by key on the shared project topics."""
    seed = seed_by_id[CENTRE]
    profile = dataclasses.replace(seed.profile, centre_id=unique("relay"))
    return CentreApp(profile, centre_db), seed.capabilities


@pytest.fixture
def dead_producer():
    """A real Kafka client whose bootstrap address has no broker behind it."""
    from infra.devstack._proc import free_port

    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}", client_id=unique("dead"), acks="all",
                      api_version=(4, 0), max_block_ms=1500, request_timeout_ms=1500, retries=0)
    yield p
    p.close(timeout=2)


def test_relay_once_publishes_with_headers_then_marks_sent(centre, centre_db, producer, topic_reader):
    app, caps = centre
    cap = caps[0]
    reader = topic_reader(topics.CAPABILITIES)
    key = f"{app.centre_id}/{cap.capability_id}"

    tracer = trace.get_tracer("tests.outbox")
    with tracer.start_as_current_span("operator publishes") as api_span:
        app.publish(cap)
        app.revise(dataclasses.replace(cap, lead_time_days=cap.lead_time_days + 1))
        app.withdraw(cap.capability_id)
    api_trace = format(api_span.get_span_context().trace_id, "032x")
    staged = rows(centre_db)
    assert [r.sent_at for r in staged] == [None, None, None]

    relay = OutboxRelay(centre_db, Outbox, producer)
    assert relay.relay_once() == 3
    assert relay.sent_total == 3

    got = reader.read(3, match=lambda r: r.key == key.encode())
    assert len({r.partition for r in got}) == 1  # one key, one partition: order kept
    assert [r.offset for r in got] == sorted(r.offset for r in got)
    for record, row in zip(got, staged):
        h = headers_of(record)
        assert h["metrofed-event-id"].decode() == row.event_id
        assert h["metrofed-event-type"].decode() == row.event_type
        m = TRACEPARENT.match(h["traceparent"].decode())
        assert m, h["traceparent"]
        assert m.group(1) == api_trace  # the producer span continues the trace of the API call
        assert record.value == row.value
    published, revised, tombstone = got
    assert unwrap(published.value).event.capability.version == 1
    assert unwrap(revised.value).event.capability.version == 2
    assert tombstone.value is None  # a real Kafka tombstone: compaction will drop the key
    assert headers_of(tombstone)["metrofed-event-type"].decode() == WITHDRAWN

    assert all(r.sent_at is not None for r in rows(centre_db))
    # Nothing is sent twice: a second pass finds no unsent rows and the topic gets nothing new.
    assert relay.relay_once() == 0
    assert len(reader.settle(match=lambda r: r.key == key.encode(), seconds=0.5)) == 3


def test_unreachable_broker_leaves_rows_unsent_and_a_later_relay_sends_them(centre, centre_db, producer,
                                                                            dead_producer, topic_reader,
                                                                            span_exporter):
    app, caps = centre
    reader = topic_reader(topics.CAPABILITIES)
    for cap in caps[:2]:
        app.publish(cap)
    app.withdraw(caps[1].capability_id)
    staged = rows(centre_db)
    assert len(staged) == 3

    broken = OutboxRelay(centre_db, Outbox, dead_producer)
    with pytest.raises(Exception):
        broken.relay_once()
    assert [r.sent_at for r in rows(centre_db)] == [None, None, None]
    assert broken.sent_total == 0
    # The failed publish is visible in the trace: an ERROR producer span with the exception.
    failed = [s for s in span_exporter.get_finished_spans()
              if s.kind is trace.SpanKind.PRODUCER and s.attributes.get("messaging.message.id") == staged[0].event_id]
    assert failed and failed[-1].status.status_code is trace.StatusCode.ERROR
    assert any(e.name == "exception" for e in failed[-1].events)

    # More work is committed meanwhile; the good relay later sends everything, in order, once.
    app.revise(dataclasses.replace(caps[0], price_cny=caps[0].price_cny + 1))
    good = OutboxRelay(centre_db, Outbox, producer)
    assert good.relay_once() == 4
    prefix = f"{app.centre_id}/".encode()
    got = reader.read(4, match=lambda r: (r.key or b"").startswith(prefix))
    ids = {headers_of(r)["metrofed-event-id"].decode() for r in got}
    assert ids == {r.event_id for r in rows(centre_db)}
    assert sum(r.value is None for r in got) == 1
    assert all(r.sent_at is not None for r in rows(centre_db))
    assert len(reader.settle(match=lambda r: (r.key or b"").startswith(prefix), seconds=0.5)) == 4


def test_a_relay_that_gets_nothing_acknowledged_renews_its_producer_and_sends(centre, centre_db, dead_producer,
                                                                              kafka, kafka_admin, topic_reader):
    app, caps = centre
    reader = topic_reader(topics.CAPABILITIES)
    made = []

    def factory():  # the wedged producer's replacement reaches the broker
        made.append(make_producer(kafka.bootstrap, unique("renewed"), security=kafka_admin))
        return made[-1]

    relay = OutboxRelay(centre_db, Outbox, dead_producer, poll_seconds=0.05, producer_factory=factory,
                        renew_after_seconds=0.5)
    app._on_commit = relay.notify
    relay.start()
    try:
        app.publish(caps[0])
        key = f"{app.centre_id}/{caps[0].capability_id}".encode()
        reader.read(1, match=lambda r: r.key == key, timeout=60)
        wait_until(lambda: all(r.sent_at is not None for r in rows(centre_db)), 30, what="row marked sent")
    finally:
        relay.stop()  # closes the replacement it made
    assert len(made) == relay.producer_renewals >= 1


def test_background_relay_is_woken_by_commits_and_drains_on_stop(centre, centre_db, producer, topic_reader):
    app, caps = centre
    reader = topic_reader(topics.CAPABILITIES)
    relay = OutboxRelay(centre_db, Outbox, producer, poll_seconds=30)  # only notify() can wake it in time
    app._on_commit = relay.notify
    relay.start()
    try:
        app.publish(caps[0])
        key = f"{app.centre_id}/{caps[0].capability_id}".encode()
        reader.read(1, match=lambda r: r.key == key, timeout=10)
        wait_until(lambda: all(r.sent_at is not None for r in rows(centre_db)), 10, what="row marked sent")
    finally:
        relay.stop()
    assert relay.sent_total == 1
    assert not relay._thread.is_alive()


@pytest.mark.postgres
def test_on_postgres_only_one_relay_sends_at_a_time(postgres, engine_factory, seed_by_id, producer, topic_reader):
    """Replicas sharing one PostgreSQL outbox: while another relay holds the outbox's advisory lock, a
    relay skips its round and leaves the rows alone; once the lock is released it sends them."""
    from sqlalchemy import text
    from sqlalchemy.orm import sessionmaker

    from metrofed.db.engine import upgrade_to_head
    from metrofed.db.outbox import _lock_key
    from tests.integration.conftest import CENTRE_MIGRATIONS

    name = "t_" + unique("lock").replace("-", "_")
    engine = engine_factory(postgres.create_database(name, replace=True))
    try:
        upgrade_to_head(engine, CENTRE_MIGRATIONS)
        sessions = sessionmaker(engine, expire_on_commit=False)
        seed = seed_by_id[CENTRE]
        app = CentreApp(dataclasses.replace(seed.profile, centre_id=unique("lock")), sessions)
        app.publish(seed.capabilities[0])
        reader = topic_reader(topics.CAPABILITIES)
        relay = OutboxRelay(sessions, Outbox, producer)

        with engine.connect() as other_replica:
            with other_replica.begin():
                assert other_replica.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                            {"k": _lock_key(Outbox.__tablename__)})
                assert relay.relay_once() == 0
                assert [r.sent_at for r in rows(sessions)] == [None]
        assert relay.relay_once() == 1
        key = f"{app.centre_id}/{seed.capabilities[0].capability_id}".encode()
        reader.read(1, match=lambda r: r.key == key)
        assert rows(sessions)[0].sent_at is not None
    finally:
        engine.dispose()
        postgres.drop_database(name)
