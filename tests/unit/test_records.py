"""Records (docs/seed-format.md) -> domain types: validation with field paths, SI fill-in, round trip."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from metrofed.domain.capability import DomainError, ServiceKind, Site
from metrofed.domain.records import (
    capability_from_dict,
    capability_to_dict,
    centre_file_from_dict,
    centre_from_dict,
    centre_to_dict,
)

SEED = yaml.safe_load(
    """
centre:
  id: sh-icv
  name: {zh: 国家智能网联汽车产业计量测试中心, en: National Industrial Metrology Centre for ICV}
  host_institution: 上海机动车检测认证技术研究中心
  city: {zh: 上海, en: Shanghai}
  province: {zh: 上海, en: Shanghai}
  industries: [智能网联汽车, intelligent connected vehicles]
  accreditations: [CNAS L0123]
  authorisations:
    verification: [JJG 52-2013]
    type_evaluation: []
  auto_accept: true
capabilities:
  - id: pressure-transmitter-cal
    service_kind: calibration
    quantity_kind: pressure
    measurand: {zh: 压力, en: pressure}
    instrument_type: {zh: 压力变送器, en: pressure transmitter}
    method: JJF 1xxx-20xx
    bands:
      - range: [0, 25]
        unit: MPa
        uncertainty: {relative: "0.02 %", absolute: "2 Pa", k: 2, p: 0.95}
      - range: [25, 100]
        unit: MPa
        uncertainty: {relative: "0.05 %", k: 2, p: 0.95}
    conditions: "(20 ± 2) °C, 45–75 %RH"
    site: lab
    lead_time_days: 5
    price_cny: 300
    capacity_per_month: 200
    basis: CNAS L0123
    keywords: [变送器, transmitter]
  - id: thermocouple-cal
    service_kind: calibration
    quantity_kind: temperature
    measurand: 温度
    method: JJF 1637-2017
    bands:
      - range: [300, 1200]
        unit: ℃
        uncertainty: {absolute: "1.0 ℃", k: 2, p: 0.95}
    capacity_per_month: 50
  - id: consult
    service_kind: consultation
    measurand: {en: measurement management systems}
"""
)


def test_seed_example_parses_and_fills_si():
    centre, caps = centre_file_from_dict(SEED)
    assert centre.centre_id == "sh-icv"
    assert "JJG 52-2013" in centre.authorisations.verification
    pt, tc, consult = caps
    assert pt.service_kind is ServiceKind.CALIBRATION and pt.site is Site.LAB
    b0, b1 = pt.bands
    assert (b0.lo_si, b0.hi_si) == (0.0, 25e6)
    assert b0.uncertainty.relative == pytest.approx(0.0002)
    assert b0.uncertainty.absolute_si == 2.0
    assert b1.lo_si == 25e6 and b1.hi_si == 100e6
    # "1.0 ℃" in an uncertainty is a difference: 1 K, not 274.15 K
    tb = tc.bands[0]
    assert tb.unit == "°C"
    assert tb.lo_si == pytest.approx(573.15)
    assert tb.uncertainty.absolute_si == pytest.approx(1.0)
    assert tb.uncertainty.absolute_unit == "delta_degC"
    assert consult.bands == () and consult.service_kind is ServiceKind.CONSULTATION


def test_round_trip():
    centre, caps = centre_file_from_dict(SEED)
    assert centre_from_dict(centre_to_dict(centre)) == centre
    for c in caps:
        assert capability_from_dict(c.centre_id, capability_to_dict(c), c.version) == c


def _bad(mutate, field):
    d = copy.deepcopy(SEED)
    mutate(d)
    with pytest.raises(DomainError) as ei:
        centre_file_from_dict(d)
    assert ei.value.field == field, str(ei.value)
    return ei.value


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["centre"].__setitem__("id", "SH ICV"), "centre.id"),
        (lambda d: d["centre"].pop("city"), "centre.city"),
        (lambda d: d["capabilities"][0].__setitem__("id", "x"), "capabilities[0].id"),
        (lambda d: d["capabilities"][0].__setitem__("service_kind", "repair"), "capabilities[0].service_kind"),
        (lambda d: d["capabilities"][0].__setitem__("quantity_kind", "presure"), "capabilities[0].quantity_kind"),
        (lambda d: d["capabilities"][0]["bands"][1].__setitem__("unit", "N*m"), "capabilities[0].bands[1].unit"),
        (lambda d: d["capabilities"][0]["bands"][1].__setitem__("unit", "kPaa"), "capabilities[0].bands[1].unit"),
        (lambda d: d["capabilities"][0]["bands"][0].__setitem__("range", [25, 0]), "capabilities[0].bands[0].range"),
        (lambda d: d["capabilities"][0]["bands"][0]["uncertainty"].__setitem__("relative", "-0.02 %"),
         "capabilities[0].bands[0].uncertainty.relative"),
        (lambda d: d["capabilities"][0]["bands"][0]["uncertainty"].__setitem__("absolute", "-2 Pa"),
         "capabilities[0].bands[0].uncertainty.absolute"),
        (lambda d: d["capabilities"][0]["bands"][0]["uncertainty"].__setitem__("absolute", "2 N"),
         "capabilities[0].bands[0].uncertainty.absolute"),
        (lambda d: d["capabilities"][0]["bands"][0]["uncertainty"].__setitem__("k", 0),
         "capabilities[0].bands[0].uncertainty.k"),
        (lambda d: d["capabilities"][0]["bands"][0]["uncertainty"].__setitem__("p", 1.0),
         "capabilities[0].bands[0].uncertainty.p"),
        (lambda d: d["capabilities"][0]["bands"][1].__setitem__("uncertainty", {"k": 2}),
         "capabilities[0].bands[1].uncertainty"),
        (lambda d: d["capabilities"][1].__setitem__("bands", []), "capabilities[1].bands"),
        (lambda d: d["capabilities"][1]["bands"][0].__setitem__("range", [-300, 100]),
         "capabilities[1].bands[0].range"),  # below 0 K
        (lambda d: d["capabilities"][0].__setitem__("lead_time_days", -1), "capabilities[0].lead_time_days"),
        (lambda d: d["capabilities"][0].__setitem__("price_cny", -5), "capabilities[0].price_cny"),
        (lambda d: d["capabilities"][0].__setitem__("capacity_per_month", -1), "capabilities[0].capacity_per_month"),
        (lambda d: d["capabilities"][0].__setitem__("site", "moon"), "capabilities[0].site"),
        (lambda d: d["capabilities"][1].__setitem__("id", "pressure-transmitter-cal"), "capabilities[1].id"),
        (lambda d: d["capabilities"][0].__setitem__("method", ""), "capabilities[0].method"),
    ],
)
def test_errors_name_the_field(mutate, field):
    _bad(mutate, field)


def test_negative_range_is_legal_for_vacuum_and_cold():
    cap = capability_from_dict("sh-icv", {
        "id": "gauge-ver", "service_kind": "verification", "quantity_kind": "pressure", "measurand": "压力",
        "method": "JJG 52-2013",
        "bands": [{"range": [-0.1, 60], "unit": "MPa", "uncertainty": {"relative": "0.01 %", "absolute": "0.1 kPa"}}],
    })
    assert cap.bands[0].lo_si == pytest.approx(-1e5)
    cold = capability_from_dict("sh-icv", {
        "id": "prt", "service_kind": "calibration", "quantity_kind": "temperature", "measurand": "温度",
        "method": "JJF 1xxx", "bands": [{"range": [-40, 150], "unit": "摄氏度", "uncertainty": {"absolute": "0.05 K"}}],
    })
    assert cold.bands[0].lo_si == pytest.approx(233.15)
    with pytest.raises(DomainError) as ei:
        capability_from_dict("sh-icv", {
            "id": "mass", "service_kind": "calibration", "quantity_kind": "mass", "measurand": "质量", "method": "JJG 99",
            "bands": [{"range": [-1, 20], "unit": "kg", "uncertainty": {"absolute": "1 mg"}}],
        }, path="capabilities[7]")
    assert ei.value.field == "capabilities[7].bands[0].range"


def test_torque_capability_does_not_accept_energy_kind_units_by_name():
    # J and N*m share a dimension; the kind is what is kept (torque here), the unit is accepted
    cap = capability_from_dict("cz-robot", {
        "id": "tw", "service_kind": "calibration", "quantity_kind": "torque", "measurand": "扭矩", "method": "JJG 707",
        "bands": [{"range": [1, 2000], "unit": "牛·米", "uncertainty": {"relative": "0.3 %"}}],
    })
    assert cap.quantity_kind == "torque" and cap.bands[0].unit == "N*m"


rel = st.floats(min_value=0, max_value=0.05, allow_nan=False)
absu = st.floats(min_value=0, max_value=1e3, allow_nan=False)


@given(lo=st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), width=st.floats(min_value=0, max_value=1e4),
       r=rel, a=absu, unit=st.sampled_from(["kPa", "MPa", "bar", "psi", "兆帕"]),
       k=st.sampled_from([1.0, 2.0, 3.0]))
def test_round_trip_property(lo, width, r, a, unit, k):
    if r == 0 and a == 0:
        a = 1.0
    d = {"id": "cap-x", "service_kind": "calibration", "quantity_kind": "pressure", "measurand": "压力",
         "method": "JJF 1xxx", "bands": [{"range": [lo, lo + width], "unit": unit,
                                          "uncertainty": {"relative": r, "absolute": f"{a!r} Pa", "k": k}}],
         "capacity_per_month": 3}
    cap = capability_from_dict("c-1", d, version=4)
    assert capability_from_dict("c-1", capability_to_dict(cap), version=4) == cap
