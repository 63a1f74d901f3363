"""What a record of a centre's inbox must be before the centre acts on it.

Two kinds of bad: a record that can never be handled at all (no request id, an id longer than the column,
addressed to another centre, a cancel for a request this centre never received) is dead-lettered; a
well-formed ``RequestRouted`` that asks for something this centre can never do (an invalid need, a
capability id that cannot exist) is *declined* with the reason, so that the gateway fails over at once.
"""

from __future__ import annotations

from metrofed.bus.checks import check_id
from metrofed.bus.envelope import Decoded
from metrofed.bus.failures import PermanentFailure
from metrofed.domain.capability import DomainError
from metrofed.domain.records import CAPABILITY_ID_RE
from metrofed.protoconv import need_from_proto
from metrofed.v1 import events_pb2


def checked_inbox_event(decoded: Decoded | None, centre_id: str):
    """The RequestRouted or RequestCancelled in ``decoded``, or PermanentFailure."""
    if decoded is None:
        raise PermanentFailure("invalid", "a tombstone on an inbox topic (inbox events always have a value)")
    ev = decoded.event
    if not isinstance(ev, (events_pb2.RequestRouted, events_pb2.RequestCancelled)):
        raise PermanentFailure("unexpected-type", f"{decoded.envelope.event_type} does not belong on an inbox")
    check_id(ev.request_id, "request_id", 64)
    if ev.centre_id != centre_id:
        raise PermanentFailure("misaddressed", f"centre_id: addressed to {ev.centre_id[:40]!r}, this is {centre_id!r}")
    if isinstance(ev, events_pb2.RequestRouted):
        check_id(ev.enterprise_id, "enterprise_id", 100)
        if ev.attempt < 1:
            raise PermanentFailure("invalid", f"attempt: is {ev.attempt}; attempts count from 1")
    return ev


def unsatisfiable(ev: events_pb2.RequestRouted) -> str:
    """Why this centre can never do what ``ev`` asks ('' when it might). The deadline is not judged here:
    a need routed in time stays valid at the centre even when it arrives a day later."""
    if not CAPABILITY_ID_RE.match(ev.capability_id):
        return f"capability_id: {ev.capability_id[:60]!r} is not a capability id"
    try:
        need_from_proto(ev.need)
    except DomainError as exc:
        return f"the need is invalid: {exc}"
    return ""
