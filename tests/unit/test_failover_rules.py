"""The failover protocol's pure rules (metrofed/domain/lifecycle.py, docs/failover.md) and the response SLA
a centre declares in its profile."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import RequestState as S
from metrofed.domain.lifecycle import arrived_too_late, cancel_applies, needs_compensation
from metrofed.domain.records import MAX_RESPONSE_SLA_SECONDS, centre_from_dict, centre_to_dict
from metrofed.protoconv import centre_from_proto, centre_to_proto
from tests.unit.test_records import SEED

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def test_an_attempt_is_late_only_after_its_deadline_and_never_without_one():
    assert not arrived_too_late(None, NOW)
    assert not arrived_too_late(NOW, NOW)
    assert not arrived_too_late(NOW + dt.timedelta(seconds=1), NOW)
    assert arrived_too_late(NOW - dt.timedelta(microseconds=1), NOW)


@pytest.mark.parametrize("held, held_attempt, cancel_attempt, applies", [
    (S.ACCEPTED, 2, 2, True),
    (S.RECEIVED, 2, 2, True),
    (S.INFO_REQUESTED, 1, 1, True),
    (S.ACCEPTED, 2, 1, False),  # an older attempt's withdrawal does not touch the newer one
    (S.ACCEPTED, 1, 2, False),
    (S.ACCEPTED, 3, 0, True),  # a gateway from before the protocol: whatever is held
    (S.DECLINED, 1, 1, False),  # the centre's own decline stands
    (S.COMPLETED, 1, 1, False),
    (S.CANCELLED, 1, 1, False),
])
def test_a_centre_withdraws_only_the_attempt_named_while_it_holds_the_work(held, held_attempt, cancel_attempt,
                                                                          applies):
    assert cancel_applies(held, held_attempt, cancel_attempt) is applies


@pytest.mark.parametrize("current, attempt, assigned, event, ev_attempt, ev_centre, compensate", [
    (S.ROUTED, 2, "b", S.ACCEPTED, 1, "a", True),  # the abandoned centre accepts after all
    (S.ACCEPTED, 2, "b", S.RECEIVED, 1, "a", True),
    (S.ROUTED, 2, "b", S.INFO_REQUESTED, 1, "a", True),
    (S.UNROUTABLE, 1, "a", S.ACCEPTED, 1, "a", True),  # the gateway gave up on its only centre
    (S.ROUTED, 2, "b", S.DECLINED, 1, "a", False),  # holds nothing
    (S.ROUTED, 2, "b", S.COMPLETED, 1, "a", False),  # finished: an operator's matter, not a withdrawal
    (S.ROUTED, 1, "a", S.ACCEPTED, 1, "a", False),  # the current attempt: applied, not compensated
    (S.ACCEPTED, 1, "a", S.ACCEPTED, 1, "a", False),  # a duplicate
    (S.CANCELLED, 1, "a", S.ACCEPTED, 1, "a", False),  # the enterprise's cancel already went to "a"
    (S.COMPLETED, 1, "a", S.RECEIVED, 1, "a", False),
])
def test_the_gateway_compensates_exactly_the_work_held_for_an_attempt_no_longer_current(
        current, attempt, assigned, event, ev_attempt, ev_centre, compensate):
    assert needs_compensation(current, attempt, assigned, event, ev_attempt, ev_centre) is compensate


def test_the_response_sla_is_optional_bounded_and_survives_dict_and_wire():
    plain = centre_from_dict(SEED)
    assert plain.response_sla_seconds == 0
    assert "response_sla_seconds" not in centre_to_dict(plain)  # stored profiles from before compare equal
    seed = copy.deepcopy(SEED)
    seed["centre"]["response_sla_seconds"] = 90
    declared = centre_from_dict(seed)
    assert declared.response_sla_seconds == 90
    assert centre_from_dict(centre_to_dict(declared)) == declared
    assert centre_from_proto(centre_to_proto(declared)) == declared
    for bad in (-1, 1.5, MAX_RESPONSE_SLA_SECONDS + 1):
        seed["centre"]["response_sla_seconds"] = bad
        with pytest.raises(DomainError) as err:
            centre_from_dict(seed)
        assert err.value.field == "centre.response_sla_seconds"
