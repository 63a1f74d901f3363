"""Property tests of the router: band joining, TUR monotonicity, worst-point correctness, unit invariance,
determinism under shuffling."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from metrofed.domain.capability import (
    Capability,
    CentreProfile,
    ExpandedUncertainty,
    LegalAuthorisations,
    RangeBand,
    ServiceKind,
    Site,
    Text,
)
from metrofed.domain.need import need_from_fields
from metrofed.domain.routing import ReasonCode, route
from metrofed.domain.units import delta_to_si, to_si

TODAY = dt.date(2026, 11, 27)
CENTRE_IDS = ["c-a", "c-b", "c-c", "c-d"]
CENTRES = {
    cid: CentreProfile(cid, Text(zh=cid), "", Text("上海", "Shanghai"), Text("上海", "Shanghai"),
                       authorisations=LegalAuthorisations(verification=frozenset({"JJG 52-2013"})))
    for cid in CENTRE_IDS
}


def band(lo, hi, unit="MPa", rel=0.0, abs_=0.0, abs_unit="Pa", kind="pressure"):
    u = ExpandedUncertainty(relative=rel, absolute=abs_, absolute_unit=abs_unit,
                            absolute_si=delta_to_si(abs_, abs_unit, kind) if abs_ else 0.0)
    return RangeBand(lo, hi, unit, u, to_si(lo, unit, kind), to_si(hi, unit, kind))


def cap(cid, capid, bands, kind="pressure", service=ServiceKind.CALIBRATION, price=100.0, lead=5, capacity=100,
        site=Site.LAB, method="JJF 1xxx"):
    return Capability(cid, capid, 1, service, kind, Text(en=kind), Text(en="x"), method, tuple(bands), site=site,
                      lead_time_days=lead, price_cny=price, capacity_per_month=capacity)


def pressure_need(lo, hi, tol=1.0, tol_unit="MPa", **kw):
    return need_from_fields(instrument_type="pressure transmitter", unit="MPa", range_min=lo, range_max=hi,
                            tolerance_value=tol, tolerance_unit=tol_unit, **kw)


# ---------------------------------------------------------------- band joining

int_band = st.tuples(st.integers(0, 20), st.integers(0, 6)).map(lambda t: (t[0], t[0] + t[1]))


@given(st.lists(int_band, min_size=1, max_size=5), st.integers(0, 20), st.integers(0, 8))
def test_covered_iff_union_of_adjacent_bands_contains_range(bands, lo, width):
    hi = lo + width
    c = cap("c-a", "cap", [band(a, b, abs_=1.0) for a, b in bands])  # U = 1 Pa: TUR never limits
    d = route(pressure_need(lo, hi, tol=1.0), [c], CENTRES, {}, TODAY)
    # oracle: with integer limits, [lo, hi] is in the union iff every integer and half-integer point is
    pts = [lo + i / 2 for i in range(2 * width + 1)]
    covered = all(any(a <= x <= b for a, b in bands) for x in pts)
    if covered:
        assert [x.capability_id for x in d.candidates] == ["cap"], d.rejected
    else:
        assert not d.candidates
        assert d.rejected[0].reason_code is ReasonCode.RANGE_NOT_COVERED


# ---------------------------------------------------------------- TUR monotonic and worst point

unc = st.tuples(st.floats(0, 0.01), st.floats(0, 5e3)).filter(lambda t: t[0] > 0 or t[1] > 0)
tol_kind = st.sampled_from(["MPa", "%", "%FS", "class"])


@settings(max_examples=200)
@given(st.lists(st.tuples(int_band, unc), min_size=1, max_size=4), st.integers(0, 20), st.integers(0, 8),
       st.floats(0.001, 5), st.floats(0.05, 1.0), tol_kind, st.sampled_from(["tur", "jjf1094"]))
def test_tightening_tolerance_never_makes_ineligible_eligible(bands, lo, width, tol, shrink, tk, rule):
    hi = lo + width
    c = cap("c-a", "cap", [band(a, b, rel=r, abs_=ab) for (a, b), (r, ab) in bands])
    assume(tk == "MPa" or hi > 0)
    wide = route(pressure_need(lo, hi, tol, tk, decision_rule=rule), [c], CENTRES, {}, TODAY)
    tight = route(pressure_need(lo, hi, tol * shrink, tk, decision_rule=rule), [c], CENTRES, {}, TODAY)
    if tight.candidates:
        assert wide.candidates
        assert wide.candidates[0].tur >= tight.candidates[0].tur * (1 - 1e-12)


@settings(max_examples=200)
@given(st.integers(-500, 15000).map(lambda i: i / 10), st.integers(0, 8000).map(lambda i: i / 10),
       st.floats(0, 0.01), st.floats(0, 2.0), st.floats(0.1, 10),
       st.sampled_from(["℃", "%"]))
def test_worst_point_is_the_minimum_ratio_over_the_range(lo, width, rel, absu, tol, tk):
    """Brute force: T/U sampled over the range never falls below the reported TUR (temperatures in ℃,
    so % of reading and relative U count from 0 ℃, not from 0 K)."""
    assume(rel > 0 or absu > 0)
    hi = lo + width
    assume(tk == "℃" or max(abs(lo), abs(hi)) > 0)  # % of reading of a 0 ℃-only range is refused by need
    b = band(-100, 2500, unit="°C", rel=rel, abs_=absu, abs_unit="delta_degC", kind="temperature")
    c = cap("c-a", "tc", [b], kind="temperature")
    need = need_from_fields(instrument_type="thermometer", unit="℃", range_min=lo, range_max=hi, tolerance_value=tol,
                            tolerance_unit=tk, min_ratio=1e-9)
    d = route(need, [c], CENTRES, {}, TODAY)
    assert d.candidates, d.rejected
    tur = d.candidates[0].tur
    fs = max(abs(lo), abs(hi))
    floor = 0.1 * fs if (tk == "%" and lo <= 0 <= hi) else 0.0
    for i in range(201):
        x = lo + width * i / 200
        if tk == "%" and abs(x) < floor:
            continue
        t = tol / 100 * abs(x) if tk == "%" else tol
        u = rel * abs(x) + absu
        if u > 0 and t > 0:
            assert tur <= t / u * (1 + 1e-9) + 1e-12, (x, t / u, tur)


# ---------------------------------------------------------------- unit invariance


@given(st.integers(0, 50), st.integers(1, 50), st.floats(0.01, 2))
def test_same_need_in_kpa_and_mpa_routes_the_same(lo, width, tol):
    caps = [cap("c-a", "p1", [band(0, 25, rel=2e-4, abs_=2.0), band(25, 100, rel=5e-4)]),
            cap("c-b", "p2", [band(10, 160, rel=5e-4, abs_=500.0)])]
    a = route(pressure_need(lo, lo + width, tol, "%FS"), caps, CENTRES, {}, TODAY)
    b = route(need_from_fields(instrument_type="pressure transmitter", unit="千帕", range_min=lo * 1000,
                               range_max=(lo + width) * 1000, tolerance_value=tol, tolerance_unit="%FS"),
              caps, CENTRES, {}, TODAY)
    assert [(c.capability_id, round(c.tur, 9)) for c in a.candidates] == \
           [(c.capability_id, round(c.tur, 9)) for c in b.candidates]
    assert [r.reason_code for r in a.rejected] == [r.reason_code for r in b.rejected]


# ---------------------------------------------------------------- determinism

cap_spec = st.tuples(
    st.sampled_from(CENTRE_IDS), st.lists(st.tuples(int_band, unc), min_size=1, max_size=3),
    st.sampled_from([ServiceKind.CALIBRATION, ServiceKind.VERIFICATION]), st.integers(50, 500),
    st.integers(0, 20), st.integers(0, 50), st.sampled_from(list(Site)),
)


@settings(max_examples=100)
@given(st.lists(cap_spec, min_size=1, max_size=12), st.integers(0, 20), st.integers(0, 8), st.floats(0.05, 5),
       st.randoms(use_true_random=False), st.dictionaries(st.sampled_from(CENTRE_IDS), st.floats(0, 1.2)))
def test_shuffling_candidates_does_not_change_the_decision(specs, lo, width, tol, rnd, load):
    caps = [cap(cid, f"cap-{i}", [band(a, b, rel=r, abs_=ab) for (a, b), (r, ab) in bs], service=sk, price=price,
                lead=lead, capacity=capacity, site=site, method="JJG 52-2013")
            for i, (cid, bs, sk, price, lead, capacity, site) in enumerate(specs)]
    need = pressure_need(lo, lo + width, tol, "MPa", deadline=TODAY + dt.timedelta(days=7))
    first = route(need, caps, CENTRES, load, TODAY)
    shuffled = list(caps)
    rnd.shuffle(shuffled)
    second = route(need, iter(shuffled), CENTRES, load, TODAY)  # any iterable, consumed once
    assert first == second
    # with the text limits biting: the same candidates explained, the same rejections kept
    kw = dict(explain=2, max_rejected=3)
    assert route(need, caps, CENTRES, load, TODAY, **kw) == route(need, list(reversed(shuffled)), CENTRES, load,
                                                                  TODAY, **kw)


def test_split_prefers_fewest_parts():
    caps = [cap("c-a", "lo", [band(0, 10, abs_=1.0)]), cap("c-b", "mid", [band(8, 20, abs_=1.0)]),
            cap("c-c", "short", [band(9, 12, abs_=1.0)]), cap("c-d", "hi", [band(19, 40, abs_=1.0)]),
            cap("c-c", "long", [band(5, 30, abs_=1.0)])]
    d = route(pressure_need(0, 40, 1.0), caps, CENTRES, {}, TODAY)
    assert not d.candidates
    assert [(p.capability_id, p.range_min, p.range_max) for p in d.split] == [("lo", 0, 10), ("long", 10, 30),
                                                                             ("hi", 30, 40)]


def test_large_candidate_list_limits_only_the_text_never_the_judgement():
    """20,000 capabilities: every one is judged and every eligible one ranked; the default limits only
    bound the explanations (best 20) and the rejection reasons kept (first 20, counts complete)."""
    rng = random.Random(7)
    caps = []
    for i in range(20000):
        lo = rng.uniform(-1, 50)
        caps.append(cap(CENTRE_IDS[i % 4], f"c{i}", [band(lo, lo + rng.uniform(1, 100), rel=rng.uniform(0, 1e-3),
                                                           abs_=rng.uniform(0, 1e3))]))
    need = pressure_need(10, 20, 0.1, "%FS")
    d = route(need, caps, CENTRES, {}, TODAY)
    full = route(need, caps, CENTRES, {}, TODAY, explain=None, max_rejected=None)
    assert len(d.candidates) + d.rejected_total == len(caps) == len(full.candidates) + len(full.rejected)
    assert d.candidates_total == len(d.candidates) == full.candidates_total
    assert d.rejected_total == full.rejected_total == sum(d.rejected_by_reason.values())
    assert d.rejected_by_reason == full.rejected_by_reason
    assert {ReasonCode(r.reason_code) for r in full.rejected} == set(d.rejected_by_reason)
    # ranking and every number are those of the unlimited decision; only the text differs
    strip = [(c.capability_id, c.score, c.tur, c.worst_point, c.u_at_worst, c.band_indexes) for c in d.candidates]
    assert strip == [(c.capability_id, c.score, c.tur, c.worst_point, c.u_at_worst, c.band_indexes)
                     for c in full.candidates]
    assert all(c.explanation for c in d.candidates[:20]) and not any(c.explanation for c in d.candidates[20:])
    assert [c.explanation for c in d.candidates[:20]] == [c.explanation for c in full.candidates[:20]]
    assert d.rejected == full.rejected[:20]  # the first 20 in (centre, capability, reason) order, with reasons
    short = route(need, caps, CENTRES, {}, TODAY, max_candidates=5)
    assert [c.capability_id for c in short.candidates] == [c.capability_id for c in full.candidates[:5]]
    assert short.candidates_total == full.candidates_total


# ---------------------------------------------------------------- per-call routing data (routing._prepare)


@settings(max_examples=100)
@given(st.lists(cap_spec, min_size=1, max_size=10), st.integers(0, 20), st.integers(0, 8), st.floats(0.05, 5),
       st.sampled_from(["MPa", "%", "%FS"]), st.booleans())
def test_shared_routing_data_never_changes_a_decision(specs, lo, width, tol, tk, in_kpa):
    """Capabilities with the same band numbers in another unit (one band set shared within a call), the same
    capability handed over twice, a second call: the decision is the one each capability alone gives."""
    assume(tk == "MPa" or lo + width > 0)
    caps = [cap(cid, f"cap-{i}", [band(a, b, rel=r, abs_=ab) for (a, b), (r, ab) in bs], service=sk, price=price,
                lead=lead, capacity=capacity, site=site, method="JJG 52-2013")
            for i, (cid, bs, sk, price, lead, capacity, site) in enumerate(specs)]
    if in_kpa:  # the same numbers in kPa: equal SI limits and U, so one band set for both
        caps += [cap(c.centre_id, c.capability_id + "-kpa",
                     [band(b.min * 1000, b.max * 1000, unit="kPa", rel=b.uncertainty.relative,
                           abs_=b.uncertainty.absolute) for b in c.bands])
                 for c in caps]
    caps.append(caps[0])  # twice: judged twice, both counted
    need = pressure_need(lo, lo + width, tol, tk, deadline=TODAY + dt.timedelta(days=7))
    kw = dict(explain=None, max_rejected=None)
    first = route(need, caps, CENTRES, {"c-b": 1.0}, TODAY, **kw)
    warm = route(need, caps, CENTRES, {"c-b": 1.0}, TODAY, **kw)
    assert first == warm
    assert first.candidates_total + first.rejected_total == len(caps)
    one_by_one = [route(need, [c], CENTRES, {"c-b": 1.0}, TODAY, **kw) for c in caps]
    # a capability's judgement, TUR and worst point do not depend on the others (its score does: price term)
    assert sorted((c.centre_id, c.capability_id, c.tur, c.worst_point, c.u_at_worst, c.band_indexes)
                  for d in one_by_one for c in d.candidates) == \
           sorted((c.centre_id, c.capability_id, c.tur, c.worst_point, c.u_at_worst, c.band_indexes)
                  for c in warm.candidates)
    assert sorted((r.centre_id, r.capability_id, r.reason) for d in one_by_one for r in d.rejected) == \
           sorted((r.centre_id, r.capability_id, r.reason) for r in warm.rejected)


def test_band_limit_at_negative_zero_keeps_its_sign():
    """-0.0 == 0.0, but the two print differently in a reason: band sets differing only there stay apart."""
    u = ExpandedUncertainty(absolute=1.0, absolute_unit="Pa", absolute_si=1.0)
    neg = cap("c-a", "neg", [RangeBand(-0.0, 2.0, "MPa", u, -0.0, 2e6)])
    pos = cap("c-b", "pos", [RangeBand(0.0, 2.0, "MPa", u, 0.0, 2e6)])
    need = pressure_need(5, 10)
    alone = [route(need, [c], CENTRES, {}, TODAY).rejected[0].reason for c in (neg, pos)]
    assert alone[0] != alone[1]  # "covers -0–2 MPa" vs "covers 0–2 MPa"
    for order in ([neg, pos], [pos, neg]):
        assert [r.reason for r in route(need, order, CENTRES, {}, TODAY).rejected] == alone


def test_uncertainty_that_cannot_be_expressed_at_95_percent_fails_only_where_it_always_did():
    """k = 0 at p = 50 %: U95 = U/k·2 is a division by zero when (and only when) the band is evaluated."""
    import pytest

    bad_u = ExpandedUncertainty(absolute=1.0, absolute_unit="Pa", absolute_si=1.0, k=0.0, coverage_probability=0.5)
    bad = cap("c-a", "bad", [RangeBand(0.0, 20.0, "MPa", bad_u, 0.0, 20e6)])
    other_service = cap("c-a", "bad-v", [RangeBand(0.0, 20.0, "MPa", bad_u, 0.0, 20e6)],
                        service=ServiceKind.TESTING)
    uncovered = cap("c-a", "bad-short", [RangeBand(0.0, 1.0, "MPa", bad_u, 0.0, 1e6)])
    need = pressure_need(5, 10)
    d = route(need, [other_service, uncovered], CENTRES, {}, TODAY)
    assert [r.reason_code for r in d.rejected] == [ReasonCode.RANGE_NOT_COVERED, ReasonCode.SERVICE_KIND]
    with pytest.raises(ZeroDivisionError):
        route(need, [bad], CENTRES, {}, TODAY)


def test_route_restores_the_garbage_collector_state():
    import gc

    need = pressure_need(5, 10)
    c = cap("c-a", "p", [band(0, 20, abs_=1.0)])
    assert gc.isenabled()
    route(need, [c], CENTRES, {}, TODAY)
    assert gc.isenabled()
    gc.disable()
    try:
        route(need, [c], CENTRES, {}, TODAY)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rejected_centres_name_every_centre_that_cannot_serve_and_why():
    """The answer names the rejected *centres*: each centre with a rejected capability and none eligible,
    with its counts by reason (a centre with one eligible capability is not rejected, whatever else it
    has); rejected_by_reason and rejected_total stay per capability."""
    need = pressure_need(5, 10, tol=0.1, site=Site.LAB)  # T = 0.1 MPa: U must be <= 25 kPa at 4:1
    caps = [
        cap("c-a", "fine", [band(0, 20, abs_=10e3)]),
        cap("c-a", "coarse", [band(0, 20, abs_=50e3)]),
        cap("c-b", "coarse-1", [band(0, 20, abs_=50e3)]),
        cap("c-b", "coarse-2", [band(0, 20, abs_=80e3)]),
        cap("c-b", "short", [band(0, 6, abs_=1e3)]),
        cap("c-c", "on-site", [band(0, 20, abs_=1e3)], site=Site.ON_SITE),
        cap("c-c", "temperature", [band(0, 100, unit="degC", abs_=0.1, abs_unit="delta_degC", kind="temperature")],
            kind="temperature"),
    ]
    d = route(need, caps, CENTRES, {}, TODAY, max_rejected=2)
    assert [c.capability_id for c in d.candidates] == ["fine"]
    assert [(r.centre_id, r.rejected, r.by_reason) for r in d.rejected_centres] == [
        ("c-b", 3, {ReasonCode.RANGE_NOT_COVERED: 1, ReasonCode.UNCERTAINTY_INADEQUATE: 2}),
        ("c-c", 2, {ReasonCode.QUANTITY_KIND: 1, ReasonCode.SITE: 1}),
    ]
    assert d.rejected_total == 6 and len(d.rejected) == 2  # c-a's coarse one counts, its centre is not rejected
    assert sum(r.rejected for r in d.rejected_centres) + 1 == d.rejected_total

    from metrofed.protoconv import decision_to_proto  # and so on the gateway's wire

    wire = decision_to_proto(d)
    assert dict(wire.rejected_by_reason) == {"QUANTITY_KIND": 1, "RANGE_NOT_COVERED": 1,
                                             "UNCERTAINTY_INADEQUATE": 3, "SITE": 1}
    assert [(r.centre_id, r.rejected, dict(r.by_reason)) for r in wire.rejected_centres] == [
        ("c-b", 3, {"RANGE_NOT_COVERED": 1, "UNCERTAINTY_INADEQUATE": 2}),
        ("c-c", 2, {"QUANTITY_KIND": 1, "SITE": 1}),
    ]
