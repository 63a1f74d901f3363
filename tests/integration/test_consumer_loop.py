"""ConsumerLoop against the real broker: offsets are committed only after the handler returns, a failing
handler is retried on the same record without anything after it being handled first, uncommitted
records go to the next member of the group, and records that can never be handled do not stop it (their
dead letters: tests/integration/test_dead_letters.py)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from metrofed.bus import tracing
from metrofed.bus.consumer import ConsumerLoop, make_consumer
from metrofed.bus.envelope import wrap
from metrofed.v1 import events_pb2
from tests.integration.conftest import committed_offset, unique, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def send(producer, topic: str, value: bytes | None, event_type: str = "", key: str = "k") -> None:
    headers = [("metrofed-event-id", str(uuid.uuid4()).encode())]
    if event_type:
        headers.append(("metrofed-event-type", event_type.encode()))
    producer.send(topic, key=key.encode(), value=value, headers=headers).get(timeout=15)


def send_status(producer, topic: str, n: int) -> list[str]:
    """``n`` valid RequestStatusChanged records; returns their event ids in offset order."""
    ids = []
    for i in range(n):
        env = wrap(events_pb2.RequestStatusChanged(request_id=f"r{i}", centre_id="c", state=4, attempt=1), "c")
        span, headers = tracing.start_producer_span(topic, "k", env.event_id, env.event_type, {})
        producer.send(topic, key=b"k", value=env.SerializeToString(), headers=headers).get(timeout=15)
        span.end()
        ids.append(env.event_id)
    return ids


class Loops:
    """Starts ConsumerLoops on the test's topic and stops every one of them at teardown."""

    def __init__(self, bootstrap: str, topic: str, security):
        self.bootstrap, self.topic, self.security = bootstrap, topic, security
        self.group = unique("it-group")
        self.loops: list[ConsumerLoop] = []

    def start(self, handler, **kw) -> ConsumerLoop:
        consumer = make_consumer(self.bootstrap, self.group, unique("it-client"), [self.topic],
                                 security=self.security)
        loop = ConsumerLoop(consumer, handler, group=self.group, name=unique("loop"), **kw).start()
        self.loops.append(loop)
        return loop

    def committed(self) -> int | None:
        return committed_offset(self.bootstrap, self.group, self.topic, security=self.security)

    def stop_all(self):
        for loop in self.loops:
            loop.stop()


@pytest.fixture
def loops(kafka, kafka_admin, topic):
    ls = Loops(kafka.bootstrap, topic, kafka_admin)
    yield ls
    ls.stop_all()


def test_offset_is_committed_only_after_the_handler_returns(producer, topic, loops):
    ids = send_status(producer, topic, 3)
    entered, release = threading.Event(), threading.Event()
    seen = []

    def handler(record, decoded):
        seen.append(decoded.envelope.event_id)
        if record.offset == 0:
            entered.set()
            assert release.wait(20), "test never released the handler"

    loops.start(handler)
    assert entered.wait(30), "the loop never delivered the first record"
    # The handler is still working on offset 0: nothing may be committed yet, nothing else handled.
    for _ in range(3):
        assert loops.committed() is None
        assert seen == ids[:1]
        threading.Event().wait(0.2)
    release.set()
    wait_until(lambda: loops.committed() == 3, 15, 0.1, "offset 3 committed")
    assert seen == ids


def test_a_failing_handler_is_retried_on_the_same_record_and_order_is_kept(producer, topic, loops):
    ids = send_status(producer, topic, 5)
    allow = threading.Event()
    seen: list[int] = []
    failures = []

    def handler(record, decoded):
        seen.append(record.offset)
        assert decoded.envelope.event_id == ids[record.offset]
        if record.offset == 2 and not allow.is_set():
            failures.append(record.offset)
            raise OperationalError("UPDATE requests …", {}, Exception("database unavailable"))

    loop = loops.start(handler)
    wait_until(lambda: len(failures) >= 3, 20, what="three failed attempts at offset 2")
    # Offsets 0 and 1 are done and committed; the loop keeps retrying offset 2 and handles nothing after it.
    wait_until(lambda: loops.committed() == 2, 10, 0.1, "offset 2 committed")
    snapshot = list(seen)
    assert snapshot[:2] == [0, 1]
    assert set(snapshot[2:]) == {2}
    assert loops.committed() == 2

    allow.set()
    wait_until(lambda: loops.committed() == 5, 20, 0.1, "offset 5 committed")
    assert seen[-3:] == [2, 3, 4]
    assert [o for o in seen if o != 2] == [0, 1, 3, 4]  # every other record exactly once, in order
    assert loop.handled == 5


def test_uncommitted_records_go_to_the_next_consumer_of_the_group(producer, topic, loops):
    ids = send_status(producer, topic, 5)
    crashed = []

    def crashing(record, decoded):
        if record.offset >= 2:
            crashed.append(record.offset)
            raise OperationalError("INSERT …", {}, Exception("process dies before the effect is durable"))

    first = loops.start(crashing)
    wait_until(lambda: crashed, 30, what="the first consumer to reach offset 2")
    wait_until(lambda: loops.committed() == 2, 10, 0.1, "offset 2 committed")
    first.stop()
    assert loops.committed() == 2  # stopping does not commit what was not handled

    got = []
    second = loops.start(lambda record, decoded: got.append((record.offset, decoded.envelope.event_id)))
    wait_until(lambda: len(got) >= 3, 30, what="redelivery to the new group member")
    wait_until(lambda: loops.committed() == 5, 10, 0.1, "offset 5 committed")
    assert got == list(zip([2, 3, 4], ids[2:]))
    assert second.handled == 3


def test_without_a_dead_letter_topic_records_that_can_never_be_handled_are_logged_and_passed(producer, topic, loops):
    unknown = events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v2.SomethingNew",
                                  payload=b"\x08\x01")
    bad_payload = events_pb2.Envelope(event_id=str(uuid.uuid4()),
                                      event_type="metrofed.v1.RequestStatusChanged", payload=b"\x0a\x05ab")
    send(producer, topic, b"\x0a\xff\xff\xff", "metrofed.v1.RequestRouted")  # 0: not protobuf at all
    send(producer, topic, unknown.SerializeToString(), unknown.event_type)  # 1: from a newer producer
    send(producer, topic, bad_payload.SerializeToString(), bad_payload.event_type)  # 2: truncated payload
    send(producer, topic, None, "metrofed.v1.CapabilityWithdrawn")  # 3: a tombstone: handled, decoded=None
    (good,) = send_status(producer, topic, 1)  # 4
    calls = []

    loop = loops.start(lambda record, decoded: calls.append((record.offset, decoded)))
    wait_until(lambda: loops.committed() == 5, 30, 0.1, "offset 5 committed")
    assert [offset for offset, _ in calls] == [3, 4]
    assert calls[0][1] is None
    assert calls[1][1].envelope.event_id == good
    assert loop.handled == 2
    assert dict(loop.dead_lettered) == {"undecodable": 2, "unknown-type": 1}


class Wedged:
    """A real consumer that stays in its group, assigned, and never fetches: what kafka-python 3.0.12 now and
    then became after a broker SIGKILL (not paused: a paused partition is a retry, not a wedge)."""

    def __init__(self, consumer):
        self._c = consumer
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            assert not consumer.poll(timeout_ms=100)  # the topic is still empty

    def poll(self, timeout_ms=0):
        time.sleep(timeout_ms / 1000)  # fetches nothing, ever
        return {}

    def __getattr__(self, name):
        return getattr(self._c, name)


def test_a_consumer_that_stops_fetching_while_records_wait_is_replaced(kafka, kafka_admin, producer, topic, loops):
    seen: list[str] = []
    made = []

    def factory():
        made.append(make_consumer(kafka.bootstrap, loops.group, unique("it-fresh"), [topic], security=kafka_admin))
        return made[-1]

    wedged = Wedged(make_consumer(kafka.bootstrap, loops.group, unique("it-wedged"), [topic], security=kafka_admin))
    assert wedged.assignment()
    ids = send_status(producer, topic, 3)
    loop = ConsumerLoop(wedged, lambda r, d: seen.append(d.envelope.event_id), group=loops.group,
                        name=unique("loop"), consumer_factory=factory, stall_seconds=1.0).start()
    loops.loops.append(loop)
    wait_until(lambda: seen == ids, 60, what="the records handled by the replacement consumer")
    assert loop.renewals == len(made) == 1
