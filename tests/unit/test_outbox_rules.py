"""The outbox's pure rules: which send failures are permanent, which topic names Kafka never accepts,
and the event-size bound at staging time (with the field that made the event too big)."""

from __future__ import annotations

import pytest
from kafka import errors as kafka_errors

from metrofed.bus.event_size import MAX_EVENT_BYTES, largest_field
from metrofed.bus.send_failures import classify, topic_problem
from metrofed.db.outbox import EventTooLarge, add_event
from metrofed.domain.capability import DomainError
from metrofed.v1 import capability_pb2, events_pb2, request_pb2


@pytest.mark.parametrize("exc", [
    kafka_errors.MessageSizeTooLargeError("too big"),
    kafka_errors.InvalidTopicError(),
    kafka_errors.TopicAuthorizationFailedError({"t"}),
    kafka_errors.ClusterAuthorizationFailedError(),
    TypeError("value must be bytes"),
])
def test_refusals_that_never_change_are_permanent(exc):
    failure = classify(exc)
    assert failure.permanent and type(exc).__name__ in failure.reason


@pytest.mark.parametrize("exc", [
    kafka_errors.KafkaTimeoutError("Failed to update metadata after 15.0 secs."),
    kafka_errors.NotEnoughReplicasError(),
    kafka_errors.UnknownTopicOrPartitionError(),
    kafka_errors.NotLeaderForPartitionError(),
    kafka_errors.KafkaConnectionError("connection refused"),
    RuntimeError("something nobody foresaw"),  # unknown: wait and retry, never drop on a guess
])
def test_failures_of_the_moment_are_transient(exc):
    assert not classify(exc).permanent


@pytest.mark.parametrize("name", ["metrofed.inbox.sh-icv.v1", "metrofed.request-status.v1", "a", "x" * 249])
def test_legal_topic_names_pass(name):
    assert topic_problem(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "not a topic!", "inbox/centre", "x" * 250, "中心"])
def test_illegal_topic_names_are_named(name):
    assert topic_problem(name).startswith("InvalidTopicError")


def _capability(bands: int, note: str = "") -> events_pb2.CapabilityPublished:
    return events_pb2.CapabilityPublished(capability=capability_pb2.Capability(
        capability_id="c", conditions=note,
        bands=[capability_pb2.RangeBand(min=0, max=i + 1, unit="MPa") for i in range(bands)]))


def test_the_largest_field_is_found_through_sub_messages():
    assert largest_field(_capability(2000)) == "capability.bands"
    assert largest_field(_capability(1, note="x" * 5000)) == "capability.conditions"
    assert largest_field(events_pb2.RequestStatusChanged(request_id="r", note="n" * 900)) == "note"
    assert largest_field(events_pb2.RequestRouted(request_id="r", need=request_pb2.Need(
        measurand="m" * 900))) == "need.measurand"
    assert largest_field(events_pb2.RequestCancelled()) == ""


class _Session:
    """Our own port: add_event only calls session.add."""

    def __init__(self):
        self.added = []

    def add(self, row):
        self.added.append(row)


class _Row:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_an_event_over_the_bound_is_refused_before_anything_is_staged():
    session = _Session()
    with pytest.raises(EventTooLarge) as err:
        add_event(session, _Row, topic="t", key="k", event=_capability(40_000), producer="p")
    assert isinstance(err.value, DomainError) and err.value.field == "capability.bands"
    assert str(err.value).startswith("capability.bands: ") and f"{MAX_EVENT_BYTES:,}" in str(err.value)
    assert session.added == []


def test_an_event_under_the_bound_is_staged():
    session = _Session()
    add_event(session, _Row, topic="t", key="k", event=_capability(100), producer="p")
    (row,) = session.added
    assert len(row.value) <= MAX_EVENT_BYTES and row.topic == "t" and row.key == "k"
