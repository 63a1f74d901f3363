"""Table-driven routing: realistic requests over a fixed catalog (routing_cases.py), each row citing the
rule it exercises."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from metrofed.domain.need import need_from_fields
from metrofed.domain.routing import ReasonCode, route
from routing_cases import CAPS, CASES, CENTRES, TODAY


def _key(x) -> str:
    return f"{x.centre_id}/{x.capability_id}"


def test_table_is_big_enough():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(c.rule for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_routing_case(case):
    need = need_from_fields(**case.need, today=TODAY)
    d = route(need, CAPS, CENTRES, case.load, TODAY, max_rejected=None)  # every rejection with its reason
    got = [_key(c) for c in d.candidates]
    ctx = f"[{case.rule}] got {got}; rejected " + "; ".join(f"{_key(r)} {r.reason_code.value}: {r.reason}"
                                                            for r in d.rejected if r.reason_code.value != "SERVICE_KIND")
    if case.ordered:
        assert got == case.eligible, ctx
    else:
        assert sorted(got) == sorted(case.eligible), ctx
    rej = {_key(r): r.reason_code.value for r in d.rejected}
    for k, code in case.rejected.items():
        assert rej.get(k) == code, f"{k}: expected {code}, got {rej.get(k)}; {ctx}"
    # every capability is either a candidate or rejected, exactly once
    assert sorted(got + list(rej)) == sorted(_key(c) for c in CAPS)
    assert len(rej) == len(d.rejected) == d.rejected_total == sum(d.rejected_by_reason.values())
    assert d.candidates_total == len(d.candidates)
    if case.service_kind:
        assert d.service_kind.value == case.service_kind
    if case.legal_note_contains:
        assert case.legal_note_contains in d.legal_note, d.legal_note
    got_split = [(f"{p.centre_id}/{p.capability_id}", p.range_min, p.range_max) for p in d.split]
    assert [s[0] for s in got_split] == [s[0] for s in case.split], f"split {got_split}; {ctx}"
    for (_, lo, hi), (_, elo, ehi) in zip(got_split, case.split):
        assert lo == pytest.approx(elo) and hi == pytest.approx(ehi)
    for p in d.split:
        assert p.tur >= d.required_ratio
    if case.split:
        assert not d.candidates
    for c in d.candidates:
        _check_candidate(c, d.required_ratio, need)
    if d.candidates and case.worst_point is not None:
        assert d.candidates[0].worst_point == pytest.approx(case.worst_point), d.candidates[0].explanation
    if d.candidates and case.band_text is not None:
        assert case.band_text in d.candidates[0].explanation, d.candidates[0].explanation
    for r in d.rejected:
        assert isinstance(r.reason_code, ReasonCode) and r.reason


def _check_candidate(c, required, need):
    assert c.tur >= required
    assert c.tur == pytest.approx(c.tolerance_at_worst / c.u_at_worst, rel=1e-9)
    assert c.worst_point_unit == need.display_unit
    assert need.range_min - 1e-9 <= c.worst_point <= need.range_max + 1e-9
    e = c.explanation
    assert re.search(r"band -?[\d.]+–[\d.]+ ", e), e  # names the band
    assert "U = " in e and f"TUR {c.tur:.4g}"[:7] in e or "TUR " in e, e
    assert f"U = {_fmt(c.u_at_worst)}" in e, e
    assert "TUR" in e and ":1" in e
    assert "\n" not in e  # one paragraph


def _fmt(x):
    from metrofed.domain.units import format_value
    return format_value(x)


@pytest.mark.parametrize("case_id", ["it-measurand-only", "it-unknown-instrument"])
def test_no_instrument_rejection_without_a_known_instrument(case_id):
    case = next(c for c in CASES if c.id == case_id)
    d = route(need_from_fields(**case.need, today=TODAY), CAPS, CENTRES, {}, TODAY)
    assert not [r for r in d.rejected if r.reason_code is ReasonCode.INSTRUMENT_TYPE]
    assert all("word overlap" in c.explanation for c in d.candidates)


def test_instrument_rejection_is_explained():
    case = next(c for c in CASES if c.id == "it-wrench-not-joint-sensor")
    d = route(need_from_fields(**case.need, today=TODAY), CAPS, CENTRES, {}, TODAY)
    r = next(r for r in d.rejected if r.capability_id == "joint-torque-sensor-cal")
    assert r.reason.startswith("calibrates ") and "robot joint torque sensor" in r.reason and "torque wrench" in r.reason
    assert "serves torque wrenches" in d.candidates[0].explanation


def test_thermocouple_u_is_a_difference_in_the_explanation():
    need = need_from_fields(instrument_type="K型热电偶", unit="℃", range_min=1000, range_max=1000,
                            tolerance_value=2.5, tolerance_unit="℃")
    d = route(need, CAPS, CENTRES, {}, TODAY)
    c = d.candidates[0]
    assert c.u_at_worst == pytest.approx(0.6)  # 0.6 K = 0.6 ℃ as a difference, never 273.75
    assert c.tolerance_at_worst == pytest.approx(2.5)
    assert c.tur == pytest.approx(2.5 / 0.6)
    assert "U = 0.6 °C" in c.explanation and "band 300–1000 °C" in c.explanation


def test_jjg52_gauge_tolerance_in_explanation():
    need = need_from_fields(instrument_type="一般压力表", unit="MPa", range_min=0, range_max=60, tolerance_value=1.6,
                            tolerance_unit="class", legal_use=True)
    d = route(need, CAPS, CENTRES, {}, TODAY)
    assert d.candidates and all(c.tolerance_at_worst == pytest.approx(0.96) for c in d.candidates)
    assert "±0.96 MPa" in d.candidates[0].explanation


def test_split_parts_chain_and_name_sub_ranges():
    need = need_from_fields(instrument_type="压力变送器", unit="MPa", range_min=0, range_max=160, tolerance_value=0.25,
                            tolerance_unit="%FS")
    d = route(need, CAPS, CENTRES, {}, TODAY)
    assert len(d.split) == 2
    assert d.split[0].range_min == 0 and d.split[-1].range_max == pytest.approx(160)
    for a, b in zip(d.split, d.split[1:]):
        assert a.range_max == pytest.approx(b.range_min)
    assert d.split[0].band_indexes == (0, 1)  # both bands of the 0–25 + 25–100 capability


def test_deadline_miss_is_flagged_not_rejected():
    need = need_from_fields(instrument_type="扭矩扳手", unit="N·m", range_min=20, range_max=200, tolerance_value=1,
                            tolerance_unit="%", deadline=TODAY + dt.timedelta(days=3))
    d = route(need, CAPS, CENTRES, {}, TODAY)
    late = [c for c in d.candidates if c.missed_deadline]
    assert [_key(c) for c in late] == ["cz-robot/torque-wrench-cal"]
    assert "MISSES the deadline" in late[0].explanation


def test_worked_example_in_docs_matches_the_router():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "routing.md"
    quoted = " ".join(line[2:] for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("> "))
    case = next(c for c in CASES if c.id == "pt-20-70-join")
    d = route(need_from_fields(**case.need), CAPS, CENTRES, {}, TODAY)
    assert d.candidates[0].explanation == quoted
