"""Which failures of a consumed record are worth retrying, and which mean the record must be dead-lettered.

Transient: a later attempt can succeed without anyone touching the record (the broker or database is
unavailable, a lock timed out). The loop retries the same record, in order, with backoff, for as long as
it takes: skipping it would reorder or lose work.

Permanent: the record itself can never be handled -- undecodable bytes, an event type this build does not
know, an invalid field, a constraint the database will always refuse, a domain rule the event can never
satisfy, or any ``PermanentFailure`` a handler raises (signatures, authorisation, ...). Retrying would
hold the partition forever, so the record goes to the group's dead-letter topic and the loop moves on.

Unclassified (any other exception, usually a bug): retried like a transient failure a bounded number of
times, then dead-lettered with code ``unclassified``. No single record may hold a partition; an operator
re-drives the dead-lettered records once the bug is fixed (``metrofed dlq redrive``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import DecodeError

from metrofed.bus.envelope import UnknownEvent
from metrofed.bus.failures import PermanentFailure
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import InvalidTransition

Kind = Literal["transient", "permanent", "unclassified"]

MAX_REASON = 1000  # characters kept of an exception's text; a header is not a log file


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    code: str  # short machine-readable word: the DLQ's reason code
    reason: str  # what an operator reads


def _text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "…"


def classify(exc: BaseException) -> Verdict:
    if isinstance(exc, PermanentFailure):
        return Verdict("permanent", exc.code, exc.reason[:MAX_REASON])
    if isinstance(exc, DecodeError):
        return Verdict("permanent", "undecodable", _text(exc))
    if isinstance(exc, UnknownEvent):
        return Verdict("permanent", "unknown-type", f"event type {str(exc)!r} is unknown to this build")
    if isinstance(exc, DomainError):
        return Verdict("permanent", "invalid", _text(exc))
    if isinstance(exc, InvalidTransition):
        return Verdict("permanent", "domain-rule", _text(exc))
    sql = _classify_sqlalchemy(exc)
    if sql is not None:
        return sql
    try:
        from kafka.errors import KafkaError
    except ImportError:  # pragma: no cover - kafka-python is a dependency of every service
        KafkaError = ()  # noqa: N806
    if isinstance(exc, KafkaError):
        return Verdict("transient", "broker", _text(exc))
    from metrofed.errors import Unavailable

    if isinstance(exc, (ConnectionError, TimeoutError, Unavailable)):
        return Verdict("transient", "unavailable", _text(exc))
    return Verdict("unclassified", "unclassified", f"{type(exc).__name__}: {_text(exc)}")


def _classify_sqlalchemy(exc: BaseException) -> Verdict | None:
    try:
        from sqlalchemy import exc as sa
    except ImportError:  # pragma: no cover
        return None
    # Integrity and data errors first: they are DBAPIErrors too, but the same row fails the same way forever
    # (a duplicate key, an id longer than its column on PostgreSQL, a NUL byte in a text field).
    if isinstance(exc, sa.IntegrityError):
        return Verdict("permanent", "constraint", _text(exc.orig or exc))
    if isinstance(exc, sa.DataError):
        return Verdict("permanent", "data", _text(exc.orig or exc))
    if isinstance(exc, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError)):
        return Verdict("transient", "database", _text(exc))
    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return Verdict("transient", "database", _text(exc))
    return None
