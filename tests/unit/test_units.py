"""Units: Chinese text, SI conversion, temperature differences, rpm, kinds (DOMAIN.md 'Units: traps')."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrofed.domain import units
from metrofed.domain.capability import DomainError
from metrofed.domain.units import (
    QUANTITY_KINDS,
    UnitError,
    check_kind,
    delta_to_si,
    from_si,
    infer_kind,
    normalise_unit_text,
    parse_quantity_text,
    parse_relative,
    parse_unit,
    to_si,
)

SEED_FORMAT_KINDS = """pressure, temperature, torque, force, mass, length, angle, angular_velocity, acceleration, velocity,
rotational_speed, voltage, current, resistance, electrical_power, electrical_energy, frequency,
time_interval, volume, volume_flow, mass_flow, relative_humidity, illuminance, luminous_intensity,
sound_pressure_level, magnetic_flux_density, magnetic_field_strength, amount_concentration,
mass_concentration, energy, dimensionless"""


def test_quantity_kinds_are_exactly_those_of_the_seed_format():
    expected = {k.strip() for k in SEED_FORMAT_KINDS.replace("\n", " ").split(",")}
    assert set(QUANTITY_KINDS) == expected
    for name, q in QUANTITY_KINDS.items():
        assert q.name == name and q.zh and q.en and q.si_unit and q.dimensionality
        # the SI unit of every kind fits the kind
        check_kind(q.si_unit, name)


@pytest.mark.parametrize(
    "text, canon",
    [
        ("℃", "°C"), ("摄氏度", "°C"), ("°C", "°C"), ("degC", "°C"),
        ("千帕", "kPa"), ("兆帕", "MPa"), ("帕", "Pa"), ("kPa", "kPa"),
        ("牛·米", "N*m"), ("N·m", "N*m"), ("N.m", "N*m"), ("Nm", "N*m"), ("N*m", "N*m"), ("kN·m", "kN*m"),
        ("r/min", "rpm"), ("转/分", "rpm"), ("rpm", "rpm"),
        ("%RH", "%"), ("% RH", "%"), ("%", "%"),
        ("µm", "µm"), ("μm", "µm"), ("um", "µm"), ("微米", "µm"),
        ("m²", "m**2"), ("m³/h", "m**3/h"), ("kgf/cm²", "kgf/cm**2"), ("m/s²", "m/s**2"),
        ("Ω", "Ω"), ("kΩ", "kΩ"), ("dB(A)", "dBSPL"), ("°/s", "deg/s"), ("千瓦时", "kWh"),
        ("mmH₂O", "mmH2O"), ("高斯", "gauss_si"), ("Δ℃", "delta_degC"),
    ],
)
def test_parse_unit_known_forms(text, canon):
    assert parse_unit(text) == canon
    assert parse_unit(canon) == canon  # canonical strings parse back to themselves


def test_unknown_unit_quotes_text_and_suggests():
    with pytest.raises(UnitError) as ei:
        parse_unit("kPaa", field="capabilities[0].bands[0].unit")
    err = ei.value
    assert isinstance(err, DomainError)
    assert err.field == "capabilities[0].bands[0].unit"
    assert "'kPaa'" in str(err) and "kPa" in str(err)
    with pytest.raises(UnitError, match="牛顿米米"):
        parse_unit("牛顿米米")


@pytest.mark.parametrize(
    "value, unit, target, expected",
    [
        (60, "MPa", "kPa", 60000.0),
        (1, "bar", "kPa", 100.0),
        (1, "psi", "kPa", 6.894757293168361),
        (760, "mmHg", "kPa", 101.32501),
        (1, "kgf/cm²", "kPa", 98.0665),
        (1, "mmH2O", "Pa", 9.80665),
        (3000, "r/min", "rps", 50.0),
        (1, "kWh", "J", 3.6e6),
        (100, "千克力", "N", 980.665),
    ],
)
def test_known_conversions(value, unit, target, expected):
    si = to_si(value, parse_unit(unit))
    assert from_si(si, target) == pytest.approx(expected, rel=1e-6)


def test_rpm_is_revolutions_not_radians():
    # DOMAIN.md: pint's 3000 rpm -> Hz gives 314 Hz; ours is 50 rev/s.
    assert to_si(3000, "rpm") == pytest.approx(50.0)
    assert to_si(50, "Hz", "rotational_speed") == pytest.approx(50.0)
    assert to_si(2 * math.pi, "rad/s", "rotational_speed") == pytest.approx(1.0)
    assert to_si(1, "rad/s", "angular_velocity") == pytest.approx(1.0)
    assert to_si(180, "deg/s") == pytest.approx(math.pi)


def test_temperature_points_and_differences():
    assert to_si(0.5, "°C") == pytest.approx(273.65)
    assert delta_to_si(0.5, "°C") == pytest.approx(0.5)  # an uncertainty is a difference
    assert delta_to_si(0.5, "delta_degC") == pytest.approx(0.5)
    assert delta_to_si(0.9, "°F") == pytest.approx(0.5)
    assert to_si(-40, "℃".replace("℃", "°C")) == pytest.approx(233.15)
    assert to_si(-40, "°F") == pytest.approx(233.15)


def test_check_kind_rejects_dimension_and_angle_mismatch():
    with pytest.raises(DomainError, match="torque"):
        check_kind("MPa", "torque", field="f")
    with pytest.raises(DomainError):
        check_kind("Hz", "angle")
    # frequency and rotational speed count cycles: an angular unit is converted by 2π, not refused
    assert to_si(2 * math.pi, check_kind("rad/s", "frequency"), "frequency") == pytest.approx(1.0)
    with pytest.raises(DomainError):
        check_kind("Hz", "angular_velocity")
    with pytest.raises(DomainError, match="unknown quantity kind"):
        check_kind("Pa", "pressur")
    # torque and energy share a dimension: the kind, not the unit, tells them apart
    assert check_kind("N*m", "torque") == "N*m"
    assert check_kind("J", "energy") == "J"
    assert check_kind("rpm", "rotational_speed") == "rpm"
    assert check_kind("%", "relative_humidity") == "%"


def test_infer_kind_defaults():
    assert infer_kind("N*m") == "torque"  # ambiguous N·m defaults to torque
    assert infer_kind("J") == "energy"
    assert infer_kind("kWh") == "electrical_energy"
    assert infer_kind("rpm") == "rotational_speed"
    assert infer_kind("deg/s") == "angular_velocity"
    assert infer_kind("Hz") == "frequency"
    assert infer_kind("deg") == "angle"
    assert infer_kind("°C") == "temperature"
    assert units.kind_hint("%RH") == "relative_humidity"


def test_parse_quantity_and_relative():
    assert parse_quantity_text("2 Pa", field="f") == (2.0, "Pa")
    assert parse_quantity_text("0.5 ℃", field="f") == (0.5, "°C")
    assert parse_quantity_text("-0.1 MPa", field="f") == (-0.1, "MPa")
    assert parse_quantity_text(3, field="f", default_unit="kPa") == (3.0, "kPa")
    with pytest.raises(DomainError) as ei:
        parse_quantity_text("two Pa", field="x.y")
    assert ei.value.field == "x.y"
    assert parse_relative("0.02 %", field="f") == pytest.approx(0.0002)
    assert parse_relative("5 ppm", field="f") == 5e-6
    assert parse_relative(0.0002, field="f") == 0.0002
    with pytest.raises(DomainError):
        parse_relative("-1 %", field="f")
    with pytest.raises(DomainError):
        parse_relative("2 Pa", field="f")


def test_normalise_is_stable_on_pint_text():
    assert normalise_unit_text("kPa") == "kPa"
    assert normalise_unit_text(" 兆帕 ") == "MPa"


# ---------------------------------------------------------------- properties

PRESSURE_UNITS = ["Pa", "kPa", "MPa", "bar", "mbar", "psi", "mmHg", "kgf/cm²", "mmH2O", "inH2O", "atm", "千帕", "兆帕"]
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(finite, st.sampled_from(PRESSURE_UNITS), st.sampled_from(PRESSURE_UNITS))
def test_pressure_round_trip(x, u1, u2):
    c1, c2 = parse_unit(u1), parse_unit(u2)
    y = from_si(to_si(x, c1), c2)
    back = from_si(to_si(y, c2), c1)
    assert back == pytest.approx(x, rel=1e-9, abs=1e-9)


@given(st.floats(min_value=-273.15, max_value=5000, allow_nan=False),
       st.sampled_from(["°C", "℃", "K", "°F"]))
def test_temperature_round_trip(x, u):
    c = parse_unit(u)
    assert from_si(to_si(x, c), c) == pytest.approx(x, rel=1e-12, abs=1e-9)


@given(st.floats(min_value=0, max_value=100, allow_nan=False),
       st.floats(min_value=-200, max_value=1500, allow_nan=False))
def test_celsius_differences_are_kelvin_differences(d, t):
    # a difference of d °C between two points is d K, whatever the points
    assert to_si(t + d, "°C") - to_si(t, "°C") == pytest.approx(delta_to_si(d, "°C"), abs=1e-9)
    assert delta_to_si(d, "°C") == pytest.approx(delta_to_si(d, "K"))


@given(st.floats(min_value=0, max_value=1e5, allow_nan=False))
def test_rpm_equals_sixty_times_rps(x):
    assert to_si(x, "rpm") == pytest.approx(x / 60.0)
    assert to_si(x, "rpm") == pytest.approx(to_si(x / 60.0, "rps", "rotational_speed"))


@settings(max_examples=50)
@given(st.sampled_from(sorted(QUANTITY_KINDS)))
def test_each_kind_rejects_a_unit_of_another_dimension(kind):
    q = QUANTITY_KINDS[kind]
    other = "kg" if q.dimensionality != "[mass]" else "m"
    with pytest.raises(DomainError):
        check_kind(other, kind)


def test_cached_verdicts_keep_the_callers_field_and_type():
    # check_kind and parse_quantity_text cache per text; the field of an error is the caller's, every time
    for field in ("bands[0].unit", "bands[1].unit", "bands[0].unit"):
        with pytest.raises(UnitError) as ei:
            check_kind("N*m", "pressure", field=field)
        assert ei.value.field == field and "not pressure" in ei.value.reason
        with pytest.raises(UnitError) as ei:
            check_kind("kPaa", "pressure", field=field)
        assert ei.value.field == field and "unknown unit 'kPaa'" in ei.value.reason
        with pytest.raises(DomainError) as ei:
            check_kind("kPa", "presure", field=field)
        assert ei.value.field == field and type(ei.value) is DomainError
        with pytest.raises(DomainError) as ei:
            parse_quantity_text("two Pa", field=field)
        assert ei.value.field == field
        assert parse_quantity_text("2 千帕", field=field) == (2.0, "kPa")
    assert check_kind("兆帕", "pressure") == check_kind("兆帕", "pressure", field="x") == "MPa"
    with pytest.raises(UnitError):
        check_kind(None, "pressure")  # not text: not cached, still refused
    assert normalise_unit_text(None) == "" and normalise_unit_text(" 千帕 ") == "kPa"
