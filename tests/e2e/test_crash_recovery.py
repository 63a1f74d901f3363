"""A centre killed with SIGKILL processes each routed request exactly once after it restarts.

Two windows are covered: killed *before* the request reaches it (the request waits in its inbox topic),
and killed *after* its inbox transaction committed but *before* the Kafka offset was committed (the
record is delivered again and must be recognised). "Exactly once" is checked on every effect: one inbox
row at the centre, one distinct status event on the bus, one ACCEPTED entry in the gateway's history.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from metrofed import client
from metrofed.bus import topics
from metrofed.bus.envelope import unwrap
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import wait_for_state

pytestmark = pytest.mark.e2e

# 0–100 MPa: in the e2e federation only sh-h2-storage's high-pressure band reaches 100 MPa.
NEED = rq.Need(instrument_type="high-pressure transducer", range=rq.MeasuringRange(min=0, max=100, unit="MPa"),
               tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=0.5), city="上海")


def inbox_end_offset(kafka, centre_id: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, **kafka.admin_security.client_kwargs())
    try:
        tp = TopicPartition(topics.inbox(centre_id), 0)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def status_event_ids(kafka, request_id: str) -> list[str]:
    """Every status event on the bus for this request (duplicates included), by event id."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=None, auto_offset_reset="earliest",
                             consumer_timeout_ms=1500, **kafka.admin_security.client_kwargs())
    try:
        parts = [TopicPartition(topics.REQUEST_STATUS, p) for p in consumer.partitions_for_topic(topics.REQUEST_STATUS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return [unwrap(r.value).envelope.event_id for r in consumer if r.key == request_id.encode()]
    finally:
        consumer.close()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def assert_processed_exactly_once(federation, kafka, gateway, centre_id: str, request_id: str) -> None:
    done = wait_for_state(gateway, request_id, rq.REQUEST_STATE_ACCEPTED, timeout=60)
    centre = federation.centre_as(centre_id)
    items = [i for i in centre.ListInbox(cs.ListInboxRequest(), timeout=5).items if i.request_id == request_id]
    assert len(items) == 1 and items[0].state == rq.REQUEST_STATE_ACCEPTED
    # Give a possible duplicate time to show up before counting.
    time.sleep(1.0)
    ids = status_event_ids(kafka, request_id)
    assert len(set(ids)) == 1, f"status events for {request_id}: {ids}"
    accepted = [h for h in gateway.GetRequest(gw.GetRequestRequest(request_id=request_id), timeout=5).request.history
                if h.state == rq.REQUEST_STATE_ACCEPTED]
    assert len(accepted) == 1, done.history


def route_target(gateway) -> str:
    decision = gateway.RouteNeed(gw.RouteNeedRequest(need=NEED), timeout=10).decision
    assert decision.candidates, decision
    return decision.candidates[0].centre_id


def test_centre_killed_before_consuming_processes_the_request_once_after_restart(federation, kafka, gateway):
    centre_id = route_target(gateway)
    name = f"centre-{centre_id}"
    before = inbox_end_offset(kafka, centre_id)
    federation.kill(name)
    sub = gateway.SubmitRequest(gw.SubmitRequestRequest(need=NEED,
                                                        idempotency_key=str(uuid.uuid4())), timeout=10)
    assert sub.request.assigned_centre_id == centre_id
    wait_until(lambda: inbox_end_offset(kafka, centre_id) > before, 15, "the request in the inbox topic")
    time.sleep(0.5)
    state = gateway.GetRequest(gw.GetRequestRequest(request_id=sub.request.request_id), timeout=5).request.state
    assert state == rq.REQUEST_STATE_ROUTED  # nobody has consumed it while the centre is dead

    federation.restart(name)
    federation.wait_ready(name, timeout=60)
    assert_processed_exactly_once(federation, kafka, gateway, centre_id, sub.request.request_id)


def test_centre_killed_after_its_commit_but_before_the_offset_commit_does_not_process_twice(
        federation, kafka, gateway):
    centre_id = route_target(gateway)
    name = f"centre-{centre_id}"
    federation.stop(name)
    federation.restart(name, env={"METROFED_TEST_CRASH_AFTER_INBOX_COMMIT": "1"})
    federation.wait_ready(name, timeout=60)

    sub = gateway.SubmitRequest(gw.SubmitRequestRequest(need=NEED), timeout=10)
    assert sub.request.assigned_centre_id == centre_id
    proc = federation.procs[name]
    wait_until(lambda: proc.popen.poll() is not None, 30, "the centre to kill itself after its inbox commit")
    assert proc.popen.returncode == -9

    federation.restart(name)  # without the fault: the record comes again, uncommitted
    federation.wait_ready(name, timeout=60)
    assert_processed_exactly_once(federation, kafka, gateway, centre_id, sub.request.request_id)
