"""What a centre's status event must be before the gateway lets it near a request.

Only a genuine, valid event moves a request: an event that fails these checks is dead-lettered and never
touches the request it names (metrofed.bus.consumer dead-letters the ``PermanentFailure``).
"""

from __future__ import annotations

from metrofed.bus.checks import check_id
from metrofed.bus.envelope import Decoded
from metrofed.bus.failures import PermanentFailure
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import GATEWAY_ONLY, RequestState
from metrofed.protoconv import state_from_proto
from metrofed.v1 import events_pb2


def checked_status(decoded: Decoded | None) -> tuple[events_pb2.RequestStatusChanged, RequestState]:
    if decoded is None:
        raise PermanentFailure("invalid", "a tombstone on the request-status topic (status events always have a value)")
    ev = decoded.event
    if not isinstance(ev, events_pb2.RequestStatusChanged):
        raise PermanentFailure("unexpected-type", f"{decoded.envelope.event_type} does not belong on the "
                                                  "request-status topic")
    check_id(ev.request_id, "request_id", 64)
    check_id(ev.centre_id, "centre_id", 40)
    if ev.state == 0:
        raise PermanentFailure("invalid", "state: is required")
    try:
        state = state_from_proto(ev.state)
    except DomainError as exc:
        # A newer centre's state: dead-lettered (not dropped) so that it can be re-driven after an upgrade.
        raise PermanentFailure("unknown-state", str(exc)) from None
    if state in GATEWAY_ONLY:
        raise PermanentFailure("domain-rule", f"state: a centre cannot report {state.value}; only the gateway "
                                              "gives a request that state")
    return ev, state
