"""The life of a service request, as the gateway and the centres both see it.

One state machine for both sides: the gateway holds the enterprise's view, a centre its inbox item.
Status events can arrive twice (at-least-once bus) or late (from a centre the request has since failed
over from); ``apply_status`` decides, purely, whether an event changes anything.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class RequestState(str, enum.Enum):
    SUBMITTED = "submitted"
    ROUTED = "routed"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    INFO_REQUESTED = "info_requested"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    UNROUTABLE = "unroutable"
    # Needs an operator or the enterprise: the federation cannot progress it by itself (e.g. a centre
    # declined and the stored need can no longer be routed because its deadline has passed). The reason is
    # in the request's history. Not terminal: the enterprise may cancel it, an operator may route it again.
    FAILED = "failed"


TERMINAL = frozenset({RequestState.COMPLETED, RequestState.CANCELLED, RequestState.UNROUTABLE})

_ALLOWED: dict[RequestState, frozenset[RequestState]] = {
    RequestState.SUBMITTED: frozenset({RequestState.ROUTED, RequestState.UNROUTABLE, RequestState.CANCELLED}),
    RequestState.ROUTED: frozenset({RequestState.RECEIVED, RequestState.ACCEPTED, RequestState.DECLINED,
                                    RequestState.INFO_REQUESTED, RequestState.CANCELLED}),
    RequestState.RECEIVED: frozenset({RequestState.ACCEPTED, RequestState.DECLINED,
                                      RequestState.INFO_REQUESTED, RequestState.CANCELLED}),
    RequestState.INFO_REQUESTED: frozenset({RequestState.ACCEPTED, RequestState.DECLINED,
                                            RequestState.CANCELLED}),
    RequestState.ACCEPTED: frozenset({RequestState.COMPLETED, RequestState.CANCELLED}),
    # DECLINED is transient at the gateway: it fails over (ROUTED again) or gives up (UNROUTABLE).
    RequestState.DECLINED: frozenset({RequestState.ROUTED, RequestState.UNROUTABLE, RequestState.CANCELLED,
                                      RequestState.FAILED}),
    RequestState.FAILED: frozenset({RequestState.ROUTED, RequestState.CANCELLED}),
    RequestState.COMPLETED: frozenset(),
    RequestState.CANCELLED: frozenset(),
    RequestState.UNROUTABLE: frozenset(),
}


# States only the gateway gives a request; a centre's status event claiming one of them breaks a domain rule.
GATEWAY_ONLY = frozenset({RequestState.SUBMITTED, RequestState.ROUTED, RequestState.UNROUTABLE,
                          RequestState.FAILED})


class InvalidTransition(Exception):
    def __init__(self, current: RequestState, wanted: RequestState):
        super().__init__(f"a request in state {current.value} cannot become {wanted.value}")
        self.current = current
        self.wanted = wanted


def can_transition(current: RequestState, wanted: RequestState) -> bool:
    return wanted in _ALLOWED[current]


def transition(current: RequestState, wanted: RequestState) -> RequestState:
    if not can_transition(current, wanted):
        raise InvalidTransition(current, wanted)
    return wanted


@dataclass(frozen=True)
class StatusVerdict:
    apply: bool
    why: str


def judge_status_event(current: RequestState, current_attempt: int, assigned_centre: str,
                       event_state: RequestState, event_attempt: int, event_centre: str) -> StatusVerdict:
    """Whether a centre's status event should change the gateway's request.

    Events from an earlier attempt (a centre we already failed over from) or from a centre that is not
    the assigned one are ignored; so are repeats and moves the state machine does not allow.
    """
    if event_centre != assigned_centre or event_attempt != current_attempt:
        return StatusVerdict(False, f"stale: attempt {event_attempt} at {event_centre}, "
                                    f"request is on attempt {current_attempt} at {assigned_centre}")
    if event_state == current:
        return StatusVerdict(False, "duplicate")
    if not can_transition(current, event_state):
        return StatusVerdict(False, f"{current.value} -> {event_state.value} not allowed")
    return StatusVerdict(True, "ok")


# ---- the failover protocol (docs/failover.md) ---------------------------------------------------------------

# States in which a centre holds the work of an attempt: the ones a withdrawal must undo.
HELD_AT_CENTRE = frozenset({RequestState.RECEIVED, RequestState.ACCEPTED, RequestState.INFO_REQUESTED})
# Gateway states in which the request still belongs to its assigned attempt (or is closed with it).
_WITH_ATTEMPT = frozenset({RequestState.ROUTED, RequestState.RECEIVED, RequestState.ACCEPTED,
                           RequestState.INFO_REQUESTED, RequestState.COMPLETED, RequestState.CANCELLED})


def arrived_too_late(respond_by: dt.datetime | None, now: dt.datetime) -> bool:
    """A centre must not take up an attempt after its response deadline (by the centre's own clock): from
    then on the gateway may have moved the request elsewhere. No deadline (older gateways): never late."""
    return respond_by is not None and now > respond_by


def cancel_applies(held_state: RequestState, held_attempt: int, cancel_attempt: int) -> bool:
    """A centre withdraws only the attempt named (0, from older gateways: whatever it holds), and only
    while it holds the work: a declined or finished item keeps its own outcome."""
    return held_state in HELD_AT_CENTRE and cancel_attempt in (0, held_attempt)


def needs_compensation(current: RequestState, current_attempt: int, assigned_centre: str,
                       event_state: RequestState, event_attempt: int, event_centre: str) -> bool:
    """Whether a centre's status says it holds work the gateway no longer assigns to it: an attempt the
    request has moved on from, or the current attempt after the gateway gave up on it (a failover that
    found no one). The gateway then withdraws that attempt from that centre (reason superseded)."""
    if event_state not in HELD_AT_CENTRE:
        return False
    if event_centre != assigned_centre or event_attempt != current_attempt:
        return True
    return current not in _WITH_ATTEMPT
