"""The enterprise need: validation with the gateway's field names, tolerances, decision rules, legal table."""

from __future__ import annotations

import datetime as dt

import pytest

from metrofed.domain.capability import DomainError, ServiceKind, Site
from metrofed.domain.legal import MANDATORY_VERIFICATION, codes_match, verification_required
from metrofed.domain.need import (
    DecisionRule,
    DecisionRuleKind,
    Tolerance,
    ToleranceKind,
    need_from_fields,
)

BASE = dict(instrument_type="压力变送器", range_min=0, range_max=25, unit="MPa", tolerance_value=0.1,
            tolerance_unit="%FS")


def nf(**kw):
    d = dict(BASE)
    d.update(kw)
    return need_from_fields(**d)


def test_basic_need_in_si():
    n = nf()
    assert n.quantity_kind == "pressure"
    assert (n.lo_si, n.hi_si) == (0.0, 25e6)
    assert n.tolerance.kind is ToleranceKind.PERCENT_OF_FULL_SCALE
    assert n.tolerance.half_width_si_at(1e6, n.full_scale_si) == pytest.approx(25e3)
    assert n.decision_rule == DecisionRule(DecisionRuleKind.TUR, 4.0)
    assert n.service_kind is None and n.quantity_of_items == 1


def test_accuracy_class_jjg52():
    # JJG 52: class 1.6 on 0–60 MPa -> MPE 0.96 MPa
    n = nf(range_max=60, tolerance_value=1.6, tolerance_unit="class")
    assert n.tolerance.kind is ToleranceKind.ACCURACY_CLASS
    t = n.tolerance.half_width_si_at(30e6, n.full_scale_si, n.span_si)
    assert n.delta_from_si(t) == pytest.approx(0.96)
    assert Tolerance(ToleranceKind.ACCURACY_CLASS, 1.6).half_width_si_at(0, 60e6) == pytest.approx(0.96e6)


def test_tolerance_kinds():
    assert nf(tolerance_unit="%").tolerance.kind is ToleranceKind.PERCENT_OF_READING
    assert nf(tolerance_unit="级", tolerance_value=1.0).tolerance.kind is ToleranceKind.ACCURACY_CLASS
    t = nf(tolerance_unit="kPa", tolerance_value=25).tolerance
    assert t.kind is ToleranceKind.ABSOLUTE and t.value_si == pytest.approx(25e3)
    r = nf(tolerance_unit="%").tolerance
    assert r.half_width_si_at(20e6, 25e6) == pytest.approx(0.1 / 100 * 20e6)


def test_temperature_tolerance_is_a_difference():
    n = need_from_fields(instrument_type="K型热电偶", range_min=1000, range_max=1000, unit="℃",
                         tolerance_value=2.5, tolerance_unit="℃")
    assert n.quantity_kind == "temperature"
    assert n.tolerance.unit == "delta_degC"
    assert n.tolerance.value_si == pytest.approx(2.5)  # not 275.65 K
    assert n.lo_si == pytest.approx(1273.15)


def test_kind_inference():
    assert nf(unit="N·m", range_min=20, range_max=200, tolerance_unit="%").quantity_kind == "torque"
    assert nf(unit="J", range_min=20, range_max=200, tolerance_unit="%").quantity_kind == "energy"
    assert nf(unit="N·m", quantity_kind="energy", range_min=1, range_max=2,
              tolerance_unit="%").quantity_kind == "energy"
    h = nf(unit="%RH", range_min=10, range_max=90, tolerance_value=2, tolerance_unit="%RH")
    assert h.quantity_kind == "relative_humidity" and h.hi_si == pytest.approx(0.9)
    assert h.tolerance.kind is ToleranceKind.ABSOLUTE and h.tolerance.value_si == pytest.approx(0.02)
    h2 = nf(unit="%RH", range_min=10, range_max=90, tolerance_value=2, tolerance_unit="%")
    assert h2.tolerance.kind is ToleranceKind.ABSOLUTE and h2.tolerance.value_si == pytest.approx(0.02)
    r = nf(unit="r/min", range_min=100, range_max=3000, tolerance_value=0.1, tolerance_unit="%")
    assert r.quantity_kind == "rotational_speed" and r.hi_si == pytest.approx(50.0)


def test_negative_ranges_judged_per_kind():
    assert nf(range_min=-0.1, range_max=0.5).lo_si == pytest.approx(-1e5)  # vacuum
    assert need_from_fields(measurand="温度", range_min=-40, range_max=85, unit="°C", tolerance_value=0.5,
                            tolerance_unit="°C").lo_si == pytest.approx(233.15)
    with pytest.raises(DomainError) as ei:
        need_from_fields(measurand="质量", range_min=-1, range_max=5, unit="kg", tolerance_value=1, tolerance_unit="g")
    assert ei.value.field == "need.range.min"
    with pytest.raises(DomainError) as ei:
        need_from_fields(measurand="温度", range_min=-300, range_max=5, unit="°C", tolerance_value=1)
    assert ei.value.field == "need.range.min"


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(instrument_type="", measurand=""), "need.measurand"),
        (dict(instrument_type="x" * 201), "need.instrument_type"),
        (dict(measurand="y" * 201), "need.measurand"),
        (dict(range_min=None), "need.range.min"),
        (dict(range_max="abc"), "need.range.max"),
        (dict(range_min=30, range_max=25), "need.range.max"),
        (dict(unit=""), "need.range.unit"),
        (dict(unit="kPaa"), "need.range.unit"),
        (dict(unit="MPa", quantity_kind="torque"), "need.range.unit"),
        (dict(quantity_kind="pressur"), "need.quantity_kind"),
        (dict(tolerance_value=0), "need.tolerance.value"),
        (dict(tolerance_value=-0.1), "need.tolerance.value"),
        (dict(tolerance_value=None), "need.tolerance.value"),
        (dict(tolerance_unit="N*m"), "need.tolerance.unit"),
        (dict(tolerance_unit="kPaa"), "need.tolerance.unit"),
        (dict(tolerance_kind="sideways"), "need.tolerance.kind"),
        (dict(quantity=0), "need.quantity"),
        (dict(quantity=-3), "need.quantity"),
        (dict(quantity=1.5), "need.quantity"),
        (dict(deadline="next week"), "need.deadline"),
        (dict(deadline="2020-01-01", today=dt.date(2026, 11, 27)), "need.deadline"),
        (dict(service_kind="repair"), "need.service_kind"),
        (dict(site="moon"), "need.site"),
        (dict(decision_rule="astrology"), "need.decision_rule"),
        (dict(min_ratio=-1), "need.decision_rule.min_ratio"),
    ],
)
def test_validation_names_gateway_fields(kw, field):
    with pytest.raises(DomainError) as ei:
        nf(**kw)
    assert ei.value.field == field, str(ei.value)


def test_optional_fields():
    n = nf(service_kind="检定", site="现场", deadline="2026-12-31", quantity=12, decision_rule="jjf1094",
           legal_use=True)
    assert n.service_kind is ServiceKind.VERIFICATION and n.site is Site.ON_SITE
    assert n.deadline == dt.date(2026, 12, 31) and n.quantity_of_items == 12
    assert n.decision_rule.required_ratio == 3.0
    assert nf(service_kind="不确定").service_kind is None


# ---------------------------------------------------------------- legal table


def test_legal_table_entries():
    keys = {i.key for i in MANDATORY_VERIFICATION}
    assert {"ev-ac-charger", "ev-dc-charger", "fuel-dispenser", "water-meter", "gas-meter", "electricity-meter",
            "taximeter", "pressure-gauge-safety"} <= keys
    for i in MANDATORY_VERIFICATION:
        assert i.name.zh and i.name.en and i.regulation.startswith("JJG ")


@pytest.mark.parametrize(
    "instrument, legal_use, required, code",
    [
        ("直流充电桩", None, True, "JJG 1149-2022"),
        ("EV AC charger", None, True, "JJG 1148-2022"),
        ("交流充电桩", False, False, "JJG 1148-2022"),
        ("加油机", None, True, "JJG 443-2023"),
        ("民用水表 DN20", True, True, "JJG 162-2019"),
        ("膜式燃气表 G4", None, True, "JJG 577-2012"),
        ("压力表", None, False, "JJG 52-2013"),  # safety use not declared
        ("压力表", True, True, "JJG 52-2013"),  # boiler safety gauge
        ("压力变送器", True, False, None),
        ("torque wrench", None, False, None),
    ],
)
def test_verification_required(instrument, legal_use, required, code):
    n = nf(instrument_type=instrument, legal_use=legal_use)
    req, reg, reason = verification_required(n)
    assert (req, reg) == (required, code)
    assert reason


def test_codes_match():
    assert codes_match("JJG 52-2013", "jjg52-2013")
    assert codes_match("JJG 52", "JJG 52-2013")
    assert not codes_match("JJG 52-2013", "JJG 52-1999")
    assert not codes_match("JJG 1148-2022", "JJG 1149-2022")
    assert not codes_match("", "JJG 52-2013")
