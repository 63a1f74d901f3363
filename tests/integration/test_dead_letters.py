"""Poison records through the real broker into a real ConsumerLoop: each kind lands in the group's
dead-letter topic with its origin and reason, the partition keeps moving (the good record after each
poison one is handled, in order), a record waiting for a transient retry holds only its own partition, and
the offset passes a poison record only once its dead letter is acknowledged. The PostgreSQL variants run
the centre's real inbox handler: an over-long id or a NUL byte is a dead letter on both databases."""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest
from kafka.errors import KafkaTimeoutError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.bus.consumer import ConsumerLoop, make_consumer
from metrofed.bus.dead_letter import DeadLetter, DeadLetterWriter
from metrofed.bus.envelope import wrap
from metrofed.bus.failures import PermanentFailure
from metrofed.bus.topics import TopicSpec
from metrofed.v1 import events_pb2, request_pb2
from tests.integration.conftest import committed_offset as _committed_offset
from tests.integration.conftest import delete_topics, unique, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0, *, security) -> int | None:
    """None also while the group's coordinator is still being elected (a fresh broker's first groups)."""
    from kafka.errors import CoordinatorNotAvailableError

    try:
        return _committed_offset(bootstrap, group, topic, partition, security=security)
    except CoordinatorNotAvailableError:
        return None


def status_env(request_id: str = "r1", event_id: str | None = None) -> events_pb2.Envelope:
    env = wrap(events_pb2.RequestStatusChanged(request_id=request_id, centre_id="c", state=4, attempt=1), "c")
    if event_id is not None:
        env.event_id = event_id
    return env


def send(producer, topic: str, value: bytes | None, *, key: str = "k", partition: int | None = None,
         event_type: str = "metrofed.v1.RequestStatusChanged", extra_headers=()) -> int:
    headers = [("metrofed-event-type", event_type.encode()), *extra_headers]
    meta = producer.send(topic, key=key.encode(), value=value, headers=headers, partition=partition).get(timeout=15)
    return meta.offset


class Setup:
    """A topic, its group's DLQ topic, a reader of the DLQ, and loops stopped at teardown."""

    def __init__(self, kafka, producer, topic_reader, partitions: int = 1):
        self.bootstrap, self.producer, self.security = kafka.bootstrap, producer, kafka.admin_security
        self.topic = f"it.dlq.{uuid.uuid4().hex[:10]}"
        self.group = unique("it-group")
        ensure_topics(self.bootstrap, [TopicSpec(self.topic, partitions, {"min.insync.replicas": "1"}),
                                       topics.dlq_spec(self.group)], security=self.security)
        self.dlq = topic_reader(topics.dlq(self.group))
        self.loops: list[ConsumerLoop] = []

    def start(self, handler, writer: DeadLetterWriter | None = None, **kw) -> ConsumerLoop:
        consumer = make_consumer(self.bootstrap, self.group, unique("it-client"), [self.topic],
                                 security=self.security)
        loop = ConsumerLoop(consumer, handler, group=self.group, name=unique("loop"),
                            dead_letters=writer or DeadLetterWriter(self.producer, self.group), **kw).start()
        self.loops.append(loop)
        return loop

    def committed(self, partition: int = 0) -> int | None:
        return committed_offset(self.bootstrap, self.group, self.topic, partition, security=self.security)

    def dead_letters(self, n: int, timeout: float = 30) -> list[DeadLetter]:
        return [DeadLetter.from_record(r) for r in self.dlq.read(n, timeout=timeout)]

    def close(self):
        for loop in self.loops:
            loop.stop()
        delete_topics(self.bootstrap, [self.topic, topics.dlq(self.group)], self.security)


@pytest.fixture
def setup(kafka, producer, topic_reader):
    s = Setup(kafka, producer, topic_reader)
    yield s
    s.close()


@pytest.fixture
def setup2(kafka, producer, topic_reader):
    s = Setup(kafka, producer, topic_reader, partitions=2)
    yield s
    s.close()


def db_error(cls, text: str):
    return cls("INSERT INTO processed_events …", {}, Exception(text))


def test_every_kind_of_poison_is_dead_lettered_with_its_origin_and_reason_and_the_partition_moves_on(setup,
                                                                                                     span_exporter):
    unknown = events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v2.SomethingNew", payload=b"\x08\x01")
    corrupt = events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v1.RequestStatusChanged",
                                  payload=b"\x0a\x05ab")
    # (value, expected reason code, what the handler does with it when it gets it)
    poison = [
        (b"\x0a\xff\xff\xff garbage", "undecodable", None),
        (unknown.SerializeToString(), "unknown-type", None),
        (corrupt.SerializeToString(), "undecodable", None),
        (status_env(event_id="e" * 65).SerializeToString(), "invalid", None),
        (status_env(event_id="nul\x00id").SerializeToString(), "invalid", None),
        (status_env(event_id="").SerializeToString(), "invalid", None),
        (status_env("refused").SerializeToString(), "signature", PermanentFailure("signature", "bad signature")),
        (status_env("dup").SerializeToString(), "constraint", db_error(IntegrityError, "duplicate key value")),
        (status_env("long").SerializeToString(), "data", db_error(DataError, "value too long for type varchar(64)")),
    ]
    failures = {}
    expected = []  # (offset, code) of each poison record
    good = []
    for i, (value, code, raise_) in enumerate(poison):
        expected.append((send(setup.producer, setup.topic, value, key=f"p{i}",
                              extra_headers=[("x-original", f"h{i}".encode())]), code, value, f"p{i}"))
        if raise_ is not None:
            failures[expected[-1][0]] = raise_
        ok = status_env(f"good-{i}")
        good.append(ok.event_id)
        send(setup.producer, setup.topic, ok.SerializeToString(), key=f"g{i}")
    end = len(poison) * 2
    handled = []

    def handler(record, decoded):
        if record.offset in failures:
            raise failures[record.offset]
        handled.append(decoded.envelope.event_id)

    loop = setup.start(handler)
    letters = setup.dead_letters(len(poison))
    wait_until(lambda: setup.committed() == end, 30, 0.1, f"offset {end} committed")
    assert handled == good  # every good record, once, in order: no poison record held the partition
    assert [(d.origin_topic, d.origin_partition, d.origin_offset, d.reason_code) for d in letters] == \
        [(setup.topic, 0, offset, code) for offset, code, _, _ in expected]
    for d, (_, _, value, key) in zip(letters, expected):
        assert (d.key, d.value, d.group) == (key.encode(), value, setup.group)
        assert d.reason and d.failed_at.startswith("20")
        assert ("x-original", f"h{letters.index(d)}".encode()) in d.headers  # original headers kept
        assert d.event_type == "metrofed.v1.RequestStatusChanged"
    by_code = {d.reason_code: d for d in letters}
    assert "envelope.event_id: is 65 characters long" in letters[3].reason
    assert letters[3].event_id == "e" * 65
    assert "NUL" in letters[4].reason
    assert by_code["signature"].reason == "bad signature"
    assert "metrofed.v2.SomethingNew" in by_code["unknown-type"].reason
    assert "value too long" in by_code["data"].reason
    assert dict(loop.dead_lettered) == {"undecodable": 2, "unknown-type": 1, "invalid": 3, "signature": 1,
                                        "constraint": 1, "data": 1}
    assert loop.handled == len(good)

    spans = [s for s in span_exporter.get_finished_spans()
             if s.attributes.get("messaging.destination.name") == setup.topic and s.attributes.get("metrofed.dead_lettered")]
    assert len(spans) == len(poison)
    assert all(s.status.status_code.name == "ERROR" and s.attributes["metrofed.dlq.topic"] == topics.dlq(setup.group)
               for s in spans)
    assert {s.attributes["metrofed.dlq.reason_code"] for s in spans} == set(by_code)


def test_a_transient_failure_holds_only_its_own_partition_of_the_batch(setup2):
    """Partition 0 waits for its database; partition 1, fetched in the same batches, keeps moving
    (poison dead-lettered, good records handled) -- then partition 0 resumes in order."""
    p0 = [status_env(f"p0-{i}") for i in range(3)]
    for env in p0:
        send(setup2.producer, setup2.topic, env.SerializeToString(), key="a", partition=0)
    p1_good = []
    for i in range(3):
        send(setup2.producer, setup2.topic, b"\xff garbage", key="b", partition=1)
        env = status_env(f"p1-{i}")
        p1_good.append(env.event_id)
        send(setup2.producer, setup2.topic, env.SerializeToString(), key="b", partition=1)
    database_back = threading.Event()
    seen: dict[int, list[str]] = {0: [], 1: []}
    attempts = []

    def handler(record, decoded):
        if record.partition == 0 and record.offset == 1 and not database_back.is_set():
            attempts.append(1)
            raise db_error(OperationalError, "could not connect to server: Connection refused")
        seen[record.partition].append(decoded.envelope.event_id)

    loop = setup2.start(handler)
    wait_until(lambda: setup2.committed(1) == 6, 30, 0.1, "partition 1 fully committed")
    wait_until(lambda: len(attempts) >= 3, 30, what="three attempts at partition 0 offset 1")
    assert seen[1] == p1_good
    assert seen[0] == [p0[0].event_id]  # nothing after the failing record was handled
    assert setup2.committed(0) == 1
    assert [d.origin_partition for d in setup2.dead_letters(3)] == [1, 1, 1]
    assert dict(loop.dead_lettered) == {"undecodable": 3}  # the transient failure was never dead-lettered

    database_back.set()
    wait_until(lambda: setup2.committed(0) == 3, 30, 0.1, "partition 0 fully committed")
    assert seen[0] == [e.event_id for e in p0]


class FlakyWriter(DeadLetterWriter):
    """Our dead-letter port failing its first ``n`` writes, as when the DLQ's partition leader is away."""

    def __init__(self, producer, group, n: int):
        super().__init__(producer, group)
        self.fail_left = n

    def write(self, record, code, reason, event_id=""):
        if self.fail_left > 0:
            self.fail_left -= 1
            raise KafkaTimeoutError("dead-letter topic unavailable")
        super().write(record, code, reason, event_id)


def test_the_offset_passes_a_poison_record_only_once_its_dead_letter_is_written(setup):
    send(setup.producer, setup.topic, b"\xff garbage")
    ok = status_env()
    send(setup.producer, setup.topic, ok.SerializeToString())
    handled = []
    writer = FlakyWriter(setup.producer, setup.group, 3)
    loop = setup.start(lambda r, d: handled.append(d.envelope.event_id), writer)
    wait_until(lambda: setup.committed() == 2, 30, 0.1, "offset 2 committed")
    assert writer.fail_left == 0 and handled == [ok.event_id]
    (letter,) = setup.dead_letters(1)
    assert (letter.origin_offset, letter.reason_code) == (0, "undecodable")
    assert loop.retried == 3 and dict(loop.dead_lettered) == {"undecodable": 1}


def test_an_unclassified_exception_is_retried_a_bounded_number_of_times_then_dead_lettered(setup):
    bad, ok = status_env("bug"), status_env("fine")
    send(setup.producer, setup.topic, bad.SerializeToString())
    send(setup.producer, setup.topic, ok.SerializeToString())
    calls = []

    def handler(record, decoded):
        calls.append(record.offset)
        if record.offset == 0:
            raise KeyError("a bug in the handler")

    loop = setup.start(handler, max_unclassified_attempts=3, min_backoff=0.05, max_backoff=0.1)
    wait_until(lambda: setup.committed() == 2, 30, 0.1, "offset 2 committed")
    assert calls == [0, 0, 0, 1]
    (letter,) = setup.dead_letters(1)
    assert letter.reason_code == "unclassified" and "KeyError" in letter.reason
    assert letter.event_id == bad.event_id
    assert loop.retried == 2


# ---- the centre's real handler on SQLite and PostgreSQL ---------------------------------------------------

CENTRE = "hz-oil-gas"
CAP = "pressure-transmitter-cal"


def routed(centre_id: str, *, event_id: str | None = None, **fields) -> events_pb2.Envelope:
    """A RequestRouted; ``event_id`` replaces the envelope's own (over-long, NUL: what a bad producer sends)."""
    need = request_pb2.Need(measurand="pressure", range=request_pb2.MeasuringRange(min=0, max=10, unit="MPa"),
                            tolerance=request_pb2.Tolerance(kind=request_pb2.TOLERANCE_KIND_PERCENT_OF_FULL_SCALE,
                                                            value=0.5))
    values = dict(request_id=str(uuid.uuid4()), enterprise_id="ent-1", centre_id=centre_id, capability_id=CAP,
                  need=need, attempt=1, requested_by="gateway")
    values.update(fields)
    env = wrap(events_pb2.RequestRouted(**values), "gateway")
    if event_id is not None:
        env.event_id = event_id
    return env


def test_over_long_ids_and_nul_bytes_are_dead_letters_on_every_database_and_the_inbox_keeps_moving(
        kafka, kafka_admin, producer, topic_reader, centre_db, seed_by_id, database_url):
    """The centre runs with its own identity and ACLs: its dead letters are its to write."""
    from metrofed.bus import acls
    from metrofed.bus.producer import make_producer
    from services.centre.app import CentreApp

    centre_id = unique("c")
    app = CentreApp(dataclasses.replace(seed_by_id[CENTRE].profile, centre_id=centre_id), centre_db)
    app.publish(next(c for c in seed_by_id[CENTRE].capabilities if c.capability_id == CAP))
    group = f"centre-{centre_id}"
    inbox = topics.inbox(centre_id)
    acls.grant_centre(kafka.bootstrap, kafka_admin, centre_id)
    centre = kafka.security_for(group)
    ensure_topics(kafka.bootstrap, [topics.inbox_spec(centre_id), topics.dlq_spec(group)], security=centre)
    centre_producer = make_producer(kafka.bootstrap, group, security=centre)
    dlq = topic_reader(topics.dlq(group))
    postgres = database_url.startswith("postgresql")
    poison = [
        (routed(centre_id, event_id="e" * 65), "invalid"),
        (routed(centre_id, event_id="nul\x00"), "invalid"),
        (routed(centre_id, request_id="r" * 65), "invalid"),
        (routed(centre_id, request_id="nul\x00id"), "invalid"),
        (routed(centre_id, enterprise_id="ent\x00"), "invalid"),
        # Not checked before the database: PostgreSQL refuses them itself (a DataError), SQLite stores them.
        (routed(centre_id, requested_by="g" * 41), "data" if postgres else None),
        (routed(centre_id, requested_by="nul\x00"), "data" if postgres else None),
    ]
    good = []
    loop = None
    try:
        for env, _ in poison:
            request_id = env.event_id  # any key
            producer.send(inbox, key=request_id.encode(), value=env.SerializeToString(),
                          headers=[("metrofed-event-type", env.event_type.encode())]).get(timeout=15)
            ok = routed(centre_id)
            good.append(ok)
            producer.send(inbox, key=b"k", value=ok.SerializeToString(),
                          headers=[("metrofed-event-type", ok.event_type.encode())]).get(timeout=15)
        loop = ConsumerLoop(make_consumer(kafka.bootstrap, group, group, [inbox], security=centre),
                            app.on_inbox_event, group=group, name="inbox",
                            dead_letters=DeadLetterWriter(centre_producer, group)).start()
        end = 2 * len(poison)
        wait_until(lambda: committed_offset(kafka.bootstrap, group, inbox, security=kafka_admin) == end, 30, 0.1,
                   f"offset {end} committed")
        expected = [(2 * i, code) for i, (_, code) in enumerate(poison) if code]
        letters = [DeadLetter.from_record(r) for r in dlq.read(len(expected))]
        assert dlq.settle(seconds=0.5) == dlq.records  # nothing more
        assert [(d.origin_offset, d.reason_code) for d in letters] == expected
    finally:
        if loop is not None:
            loop.stop()
        centre_producer.close(timeout=5)
        delete_topics(kafka.bootstrap, [inbox, topics.dlq(group)], kafka_admin)
    accepted = {r.request_id for r in app.inbox() if r.state == "accepted"}
    good_ids = {events_pb2.RequestRouted.FromString(g.payload).request_id for g in good}
    assert good_ids <= accepted  # every good request after a poison one was handled
    assert len(app.inbox()) == len(good) + (0 if postgres else 2)
