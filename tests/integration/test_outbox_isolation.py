"""Outbox isolation against the real broker and real databases (SQLite and PostgreSQL): a row the broker
refuses for good is marked dead and the rows of other keys after it go on; rows of one key wait behind a
transient failure of that key and then go in order; the operator lists and re-drives dead rows."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from sqlalchemy import select

from metrofed.bus.admin import ensure_topics
from metrofed.bus.topics import TopicSpec
from metrofed.cli import main as cli
from metrofed.db.outbox import OutboxRelay, RelayStalled, dead_rows
from services.centre.models import Outbox
from tests.integration.conftest import delete_topics, unique, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SMALL_LIMIT = 20_000  # the test topic's max.message.bytes: what the broker accepts per record batch


@pytest.fixture
def small_topic(kafka, kafka_admin):
    """A topic whose broker-side record limit is 20 kB, so the broker itself refuses a bigger record."""
    name = f"it.small.{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(name, 1, {"min.insync.replicas": "1",
                                                        "max.message.bytes": str(SMALL_LIMIT)})],
                  security=kafka_admin)
    yield name
    delete_topics(kafka.bootstrap, [name], kafka_admin)


@pytest.fixture
def quick_producer(kafka, kafka_admin):
    """The relay's producer settings (metrofed.bus.producer) but a short metadata wait, so a send to a
    topic that does not exist yet fails in 1.5 s instead of 15 s."""
    p = KafkaProducer(bootstrap_servers=kafka.bootstrap, client_id=unique("it-quick"), acks="all",
                      enable_idempotence=True, linger_ms=2, max_in_flight_requests_per_connection=5,
                      request_timeout_ms=15000, max_block_ms=1500, **kafka_admin.client_kwargs())
    yield p
    p.close(timeout=5)


def stage(sessions, topic: str, key: str | None, size: int = 100) -> int:
    """An outbox row as add_event would write it (the relay does not look inside the value)."""
    event_id = str(uuid.uuid4())
    with sessions.begin() as s:
        row = Outbox(event_id=event_id, event_type="metrofed.v1.Test", topic=topic, key=key,
                     value=event_id.encode().ljust(size, b"."), trace_carrier={})
        s.add(row)
        s.flush()
        return row.id


def by_id(sessions) -> dict[int, Outbox]:
    with sessions() as s:
        return {r.id: r for r in s.scalars(select(Outbox))}


def event_ids(records) -> list[str]:
    return [dict(r.headers)["metrofed-event-id"].decode() for r in records]


def test_rows_the_broker_refuses_are_dead_and_other_keys_after_them_are_sent(centre_db, producer, topic,
                                                                             small_topic, topic_reader):
    small_reader, reader = topic_reader(small_topic), topic_reader(topic)
    too_big = stage(centre_db, small_topic, "k1", size=60_000)  # refused by the broker (topic limit)
    same_key_after = stage(centre_db, small_topic, "k1")  # passes: the dead row leaves the key's order
    bad_topic = stage(centre_db, "not a topic!", "k2")  # a name Kafka never accepts
    over_request = stage(centre_db, topic, "k3", size=1_500_000)  # refused by the client: > 1 MiB request
    other_key = stage(centre_db, topic, "k4")

    relay = OutboxRelay(centre_db, Outbox, producer)
    assert relay.relay_once() == 2
    assert relay.sent_total == 2 and relay.dead_total == 3

    rows = by_id(centre_db)
    for dead, cause in ((too_big, "MessageSizeTooLarge"), (bad_topic, "InvalidTopic"),
                        (over_request, "MessageSizeTooLarge")):
        assert rows[dead].failed_at is not None and rows[dead].sent_at is None
        assert cause in rows[dead].error and rows[dead].attempts == 1
    for ok in (same_key_after, other_key):
        assert rows[ok].sent_at is not None and rows[ok].failed_at is None
    assert event_ids(small_reader.read(1)) == [rows[same_key_after].event_id]
    assert event_ids(reader.read(1)) == [rows[other_key].event_id]
    with centre_db() as s:
        assert [r.id for r in dead_rows(s, Outbox)] == [too_big, bad_topic, over_request]

    # Dead rows are not tried again: a later round has nothing to do and the topics get nothing more.
    assert relay.relay_once() == 0
    assert len(small_reader.settle(seconds=0.5)) == 1 and len(reader.settle(seconds=0.5)) == 1
    assert by_id(centre_db)[too_big].attempts == 1


def test_a_key_waits_behind_its_transient_failure_and_then_goes_in_order(centre_db, kafka, kafka_admin,
                                                                          quick_producer, topic, topic_reader):
    late_topic = f"it.late.{uuid.uuid4().hex[:10]}"  # not created yet: the broker does not auto-create
    first = stage(centre_db, late_topic, "req-1")
    other = stage(centre_db, topic, "req-2")
    second = stage(centre_db, late_topic, "req-1")
    third_key = stage(centre_db, topic, "req-3")
    reader = topic_reader(topic)

    relay = OutboxRelay(centre_db, Outbox, quick_producer, retry_base_seconds=0.1, retry_max_seconds=0.4)
    assert relay.relay_once() == 2  # the other keys went; req-1 waits
    rows = by_id(centre_db)
    assert rows[other].sent_at is not None and rows[third_key].sent_at is not None
    assert rows[first].sent_at is None and rows[first].failed_at is None and rows[first].attempts == 1
    assert "KafkaTimeoutError" in rows[first].error
    assert rows[second].sent_at is None and rows[second].attempts == 0  # never tried before the first
    assert relay.retried_total == 1 and relay.dead_total == 0
    assert sorted(event_ids(reader.read(2))) == sorted([rows[other].event_id, rows[third_key].event_id])

    # Only req-1 is left and it still cannot go: once its backoff has passed, the round that retries it
    # reports the stall (the relay loop then backs off as a whole); nothing is marked.
    def stalled():
        try:
            relay.relay_once()
        except RelayStalled:
            return True
        return False

    wait_until(stalled, 10, interval=0.1, what="a retry of req-1 reporting the stall")
    rows = by_id(centre_db)
    assert rows[first].sent_at is None and rows[first].attempts == 2 and rows[second].attempts == 0

    ensure_topics(kafka.bootstrap, [TopicSpec(late_topic, 1, {"min.insync.replicas": "1"})], security=kafka_admin)
    try:
        late_reader = topic_reader(late_topic)

        def drained():
            try:
                relay.relay_once()
            except RelayStalled:
                pass
            rows = by_id(centre_db)
            return rows[first].sent_at is not None and rows[second].sent_at is not None

        wait_until(drained, 30, interval=0.2, what="req-1's rows sent once the topic exists")
        rows = by_id(centre_db)
        got = late_reader.read(2)
        assert event_ids(got) == [rows[first].event_id, rows[second].event_id]  # in the order written
        assert got[0].offset < got[1].offset
        assert rows[first].attempts >= 2 and rows[second].failed_at is None
    finally:
        delete_topics(kafka.bootstrap, [late_topic], kafka_admin)


def test_operator_lists_dead_rows_and_re_drives_them_once_the_cause_is_fixed(database_url, centre_db, kafka,
                                                                             kafka_admin, producer, small_topic,
                                                                             topic_reader, capsys):
    reader = topic_reader(small_topic)
    dead = stage(centre_db, small_topic, "k1", size=60_000)
    also_dead = stage(centre_db, "not a topic!", "k2")
    relay = OutboxRelay(centre_db, Outbox, producer)
    assert relay.relay_once() == 0
    assert relay.dead_total == 2

    assert cli(["outbox", "dead", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    table, summary = out.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["ID", "FAILED", "AT"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == [str(dead), str(also_dead)]
    assert small_topic in out and "MessageSizeTooLarge" in out and "InvalidTopic" in out
    assert summary.startswith("2 dead, 0 pending")

    # The operator raises the topic's limit, then re-drives that one row: it goes out and is marked sent.
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id=unique("it-admin"),
                             **kafka_admin.client_kwargs())
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, small_topic,
                                            configs={"max.message.bytes": "200000"})])
    finally:
        admin.close()
    assert cli(["outbox", "retry", "--database-url", database_url, "--id", str(dead)]) == 0
    assert "1 row(s) pending again" in capsys.readouterr().out
    assert by_id(centre_db)[dead].failed_at is None

    wait_until(lambda: relay.relay_once() == 1, 30, interval=0.3, what="the re-driven row sent")
    rows = by_id(centre_db)
    assert rows[dead].sent_at is not None and rows[also_dead].failed_at is not None
    assert event_ids(reader.read(1)) == [rows[dead].event_id]

    # --all re-drives the rest; an id that is not a dead row is reported, and nothing else changes.
    assert cli(["outbox", "retry", "--database-url", database_url, "--id", str(dead)]) == 1
    capsys.readouterr()
    assert cli(["outbox", "retry", "--database-url", database_url, "--all"]) == 0
    assert "1 row(s) pending again" in capsys.readouterr().out
    assert by_id(centre_db)[also_dead].failed_at is None


def test_a_row_for_a_topic_the_centre_may_not_write_is_dead_and_its_own_events_go_on(centre_db, kafka, kafka_admin,
                                                                                      topic, topic_reader):
    """With the broker's ACLs: a centre's relay holding a row for a topic outside its grants (another
    centre's inbox here) gets TopicAuthorizationFailedError; that row is dead, its capability goes out."""
    from metrofed.bus import acls, topics
    from metrofed.bus.producer import make_producer

    centre_id = unique("acl")
    acls.grant_centre(kafka.bootstrap, kafka_admin, centre_id)
    producer = make_producer(kafka.bootstrap, unique("it-acl"), security=kafka.security_for(f"centre-{centre_id}"))
    try:
        reader = topic_reader(topics.CAPABILITIES)
        forbidden = stage(centre_db, topic, "req-9")  # a test topic: no grant for this centre
        allowed = stage(centre_db, topics.CAPABILITIES, f"{centre_id}/cap-1")
        relay = OutboxRelay(centre_db, Outbox, producer)
        assert relay.relay_once() == 1
        rows = by_id(centre_db)
        assert rows[forbidden].failed_at is not None and "TopicAuthorizationFailed" in rows[forbidden].error
        assert rows[allowed].sent_at is not None
        assert event_ids(reader.read(1, match=lambda r: r.key == f"{centre_id}/cap-1".encode())) == [
            rows[allowed].event_id]
    finally:
        producer.close(timeout=5)
        acls.revoke_party(kafka.bootstrap, kafka_admin, f"centre-{centre_id}")
