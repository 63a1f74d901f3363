"""How a consumer classifies a failure (metrofed.bus.classify), the dead-letter headers, the id checks
that run before any database, and the FAILED state of the request lifecycle."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf.message import DecodeError
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NotLeaderForPartitionError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, ProgrammingError

from metrofed.bus import dead_letter as dl
from metrofed.bus import topics
from metrofed.bus.checks import check_id
from metrofed.bus.classify import MAX_REASON, classify
from metrofed.bus.envelope import UnknownEvent
from metrofed.bus.failures import PermanentFailure
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import TERMINAL, InvalidTransition, RequestState, can_transition
from metrofed.errors import Unavailable


def db(cls, text="boom", **kw):
    return cls("SELECT 1", {}, Exception(text), **kw)


@pytest.mark.parametrize("exc, kind, code", [
    (PermanentFailure("signature", "bad signature"), "permanent", "signature"),
    (DecodeError("truncated"), "permanent", "undecodable"),
    (UnknownEvent("metrofed.v2.New"), "permanent", "unknown-type"),
    (DomainError("need.range.unit", "unknown unit"), "permanent", "invalid"),
    (InvalidTransition(RequestState.COMPLETED, RequestState.ACCEPTED), "permanent", "domain-rule"),
    (db(IntegrityError, "duplicate key"), "permanent", "constraint"),
    (db(DataError, "value too long for type character varying(64)"), "permanent", "data"),
    (db(OperationalError, "could not connect to server"), "transient", "database"),
    (db(OperationalError, "database is locked"), "transient", "database"),
    (db(OperationalError, "canceling statement due to lock timeout"), "transient", "database"),
    (db(DBAPIError, "server closed the connection", connection_invalidated=True), "transient", "database"),
    (KafkaTimeoutError("no metadata"), "transient", "broker"),
    (KafkaConnectionError("refused"), "transient", "broker"),
    (NotLeaderForPartitionError(), "transient", "broker"),
    (ConnectionResetError("reset"), "transient", "unavailable"),
    (Unavailable("catalog still loading"), "transient", "unavailable"),
    (db(ProgrammingError, "syntax error"), "unclassified", "unclassified"),
    (KeyError("x"), "unclassified", "unclassified"),
    (RuntimeError("who knows"), "unclassified", "unclassified"),
])
def test_classify(exc, kind, code):
    verdict = classify(exc)
    assert (verdict.kind, verdict.code) == (kind, code)
    assert verdict.reason


def test_a_dbapi_error_whose_connection_is_fine_is_not_transient():
    assert classify(db(DBAPIError, "odd", connection_invalidated=False)).kind == "unclassified"


def test_reasons_are_bounded_and_name_the_exception_when_unclassified():
    assert len(classify(RuntimeError("x" * 10_000)).reason) < MAX_REASON + 50
    assert classify(KeyError("k")).reason.startswith("KeyError")
    assert classify(PermanentFailure("invalid", "y" * 5000)).reason == "y" * MAX_REASON


@pytest.mark.parametrize("value, fails", [("abc", ""), ("", "is required"), ("x" * 65, "65 characters long"),
                                          ("x" * 64, ""), ("a\x00b", "NUL")])
def test_check_id(value, fails):
    if not fails:
        assert check_id(value, "request_id", 64) == value
        return
    with pytest.raises(PermanentFailure) as info:
        check_id(value, "request_id", 64)
    assert info.value.code == "invalid" and info.value.reason.startswith("request_id: ") and fails in info.value.reason


@dataclasses.dataclass
class Rec:
    topic: str = "metrofed.inbox.c.v1"
    partition: int = 2
    offset: int = 7
    key: bytes | None = b"k"
    value: bytes | None = b"v"
    headers: list = dataclasses.field(default_factory=list)


def test_dead_letter_headers_name_the_origin_and_read_back():
    rec = Rec(headers=[("metrofed-event-type", b"metrofed.v1.RequestRouted"), ("traceparent", b"00-ab")])
    headers = dl.dead_letter_headers(rec, "centre-c", "invalid", "request_id: is required", "e-1")
    back = dl.DeadLetter.from_record(Rec(topic=topics.dlq("centre-c"), partition=0, offset=3, headers=headers))
    assert back.origin == ("metrofed.inbox.c.v1", 2, 7)
    assert (back.group, back.reason_code, back.reason, back.event_id) == ("centre-c", "invalid",
                                                                          "request_id: is required", "e-1")
    assert back.event_type == "metrofed.v1.RequestRouted"
    assert back.headers == rec.headers  # the original headers, without ours
    assert back.failed_at[:2] == "20"


def test_a_redriven_record_that_fails_again_carries_only_the_new_failure():
    rec = Rec(headers=[("a", b"1"), (dl.REASON, b"old"), (dl.REDRIVEN_FROM, b"metrofed.dlq.g.v1/0/3")])
    headers = dl.dead_letter_headers(rec, "g", "invalid", "new")
    assert [v for k, v in headers if k == dl.REASON] == [b"new"]
    assert ("a", b"1") in headers and (dl.REDRIVEN_FROM, b"metrofed.dlq.g.v1/0/3") in headers


def test_dlq_topic_is_per_group():
    assert topics.dlq("centre-sh-icv") == "metrofed.dlq.centre-sh-icv.v1"
    spec = topics.dlq_spec("gateway")
    assert (spec.name, spec.partitions, spec.configs["cleanup.policy"]) == ("metrofed.dlq.gateway.v1", 1, "delete")


def test_failed_is_visible_not_terminal_and_reached_only_from_declined():
    assert RequestState.FAILED not in TERMINAL
    assert [s for s in RequestState if can_transition(s, RequestState.FAILED)] == [RequestState.DECLINED]
    assert can_transition(RequestState.FAILED, RequestState.CANCELLED)
    assert can_transition(RequestState.FAILED, RequestState.ROUTED)
    assert not can_transition(RequestState.FAILED, RequestState.ACCEPTED)
