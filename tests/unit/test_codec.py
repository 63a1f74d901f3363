"""metrofed.bus.codec: the catalog's fast decode path agrees with the reference path
(protoconv -> dict -> records.capability_from_dict) on valid and invalid records, error fields included."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrofed import protoconv
from metrofed.bus import codec
from metrofed.bus.envelope import UnknownEvent, unwrap, wrap
from metrofed.domain.capability import Capability, CentreProfile, DomainError
from metrofed.seed import load_seed
from metrofed.v1 import capability_pb2, common_pb2, events_pb2

SEED = load_seed()
CAPS = [c for sc in SEED for c in sc.capabilities]


def _outcome(fn, msg, centre_id, version, field="capability"):
    try:
        return ("ok", fn(msg, centre_id, version, field))
    except DomainError as exc:
        return ("error", type(exc).__name__, exc.field, exc.reason)


def _agree(msg, centre_id=None, version=None, field="capability"):
    centre_id = msg.centre_id if centre_id is None else centre_id
    version = msg.version if version is None else version
    ref = _outcome(protoconv.capability_from_proto_via_dict, msg, centre_id, version, field)
    fast = _outcome(codec.capability_from_message, msg, centre_id, version, field)
    assert fast == ref
    return fast


@pytest.fixture
def no_fallback(monkeypatch):
    def refuse(*a, **kw):
        raise AssertionError("the fast path handed a valid record to the reference path")

    monkeypatch.setattr(protoconv, "capability_from_proto_via_dict", refuse)


def test_seed_round_trips_through_the_fast_path_alone(no_fallback):
    assert len(CAPS) > 100
    for cap in CAPS:
        assert codec.decode_capability(codec.encode_capability(cap)) == cap


def test_seed_agrees_with_the_reference_path():
    for cap in CAPS:
        msg = protoconv.capability_to_proto(cap)
        assert _agree(msg) == ("ok", cap)
        # through protoconv's public entry point as well (the centre's gRPC API uses it)
        assert protoconv.capability_from_proto(msg, cap.centre_id, cap.version) == cap


def test_the_envelope_is_what_a_centre_publishes():
    cap = CAPS[0]
    value = codec.encode_capability(cap, event_id="e-1")
    decoded = unwrap(value)
    assert decoded.envelope.event_type == "metrofed.v1.CapabilityPublished"
    assert decoded.envelope.producer_centre_id == cap.centre_id
    assert decoded.envelope.event_id == "e-1"
    assert decoded.event.capability == protoconv.capability_to_proto(cap)


def test_catalog_events_and_bad_values():
    profile = SEED[0].profile
    centre_value = wrap(events_pb2.CentreRegistered(profile=protoconv.centre_to_proto(profile)),
                        profile.centre_id).SerializeToString()
    assert codec.decode_catalog_event(centre_value) == profile
    assert isinstance(codec.decode_catalog_event(codec.encode_capability(CAPS[0])), Capability)
    assert isinstance(codec.decode_catalog_event(centre_value), CentreProfile)
    with pytest.raises(UnknownEvent):
        codec.decode_capability(centre_value)
    other = wrap(events_pb2.RequestCancelled(request_id="r"), "gateway").SerializeToString()
    with pytest.raises(UnknownEvent):
        codec.decode_catalog_event(other)
    with pytest.raises(DomainError) as ei:
        codec.decode_capability(b"\xff\xff\xff garbage")
    assert ei.value.field == "envelope"
    bad_payload = events_pb2.Envelope(event_type=codec.CAPABILITY_PUBLISHED, payload=b"\xff\xff\xff").SerializeToString()
    with pytest.raises(DomainError) as ei:
        codec.decode_capability(bad_payload)
    assert ei.value.field == "envelope.payload"


# ---- invalid (and odd but valid) records: both paths give the same answer ---------------------------

def _base(kind: str = "pressure") -> capability_pb2.Capability:
    cap = next(c for c in CAPS if c.quantity_kind == kind and c.bands)
    return protoconv.capability_to_proto(cap)


def _set(path: str, value):
    def mutate(msg):
        *parents, last = path.split(".")
        obj = msg
        for p in parents:
            obj = obj[int(p)] if p.isdigit() else getattr(obj, p)
        if hasattr(value, "DESCRIPTOR"):  # a message field is copied into, not assigned
            getattr(obj, last).CopyFrom(value)
        elif isinstance(value, list):
            del getattr(obj, last)[:]
            getattr(obj, last).extend(value)
        else:
            setattr(obj, last, value)
    return mutate


NAN, INF = math.nan, math.inf
CASES = [
    # ids, version, kinds
    ("centre_id", _set("centre_id", "SH ICV")),
    ("centre_id newline", _set("centre_id", "sh-icv\n")),
    ("capability_id short", _set("capability_id", "x")),
    ("capability_id upper", _set("capability_id", "Pressure-Cal")),
    ("capability_id padded", _set("capability_id", "  pressure-cal  ")),
    ("version 0", _set("version", 0)),
    ("version negative", _set("version", -3)),
    ("service kind unspecified", _set("service_kind", 0)),
    ("service kind unknown", _set("service_kind", 77)),
    ("quantity kind unknown", _set("quantity_kind", "presure")),
    ("quantity kind empty", _set("quantity_kind", "")),
    ("quantity kind padded", _set("quantity_kind", " pressure ")),
    ("quantity kind other", _set("quantity_kind", "torque")),
    ("no bands", _set("bands", [])),
    ("consultation with bands", _set("service_kind", common_pb2.SERVICE_KIND_CONSULTATION)),
    ("site unknown", _set("site", 9)),
    ("site unspecified", _set("site", 0)),
    # bands
    ("min > max", _set("bands.0.min", 1e12)),
    ("min nan", _set("bands.0.min", NAN)),
    ("max inf", _set("bands.0.max", INF)),
    ("below vacuum", _set("bands.0.min", -1e9)),
    ("unit unknown", _set("bands.0.unit", "kPaa")),
    ("unit of another kind", _set("bands.0.unit", "N*m")),
    ("unit empty", _set("bands.0.unit", "")),
    ("unit blank", _set("bands.0.unit", "   ")),
    ("unit chinese", _set("bands.0.unit", "兆帕")),
    ("unit padded", _set("bands.0.unit", " kPa ")),
    ("unit too long", _set("bands.0.unit", "k" * 600)),
    ("relative negative", _set("bands.0.uncertainty.relative", -0.001)),
    ("relative nan", _set("bands.0.uncertainty.relative", NAN)),
    ("relative inf", _set("bands.0.uncertainty.relative", INF)),
    ("absolute negative", _set("bands.0.uncertainty.absolute", -2.0)),
    ("absolute slightly negative", _set("bands.0.uncertainty.absolute", -0.001)),
    ("absolute nan", _set("bands.0.uncertainty.absolute", NAN)),
    ("absolute inf", _set("bands.0.uncertainty.absolute", INF)),
    ("absolute many digits", _set("bands.0.uncertainty.absolute", 0.1234567890123456)),
    ("absolute unit of another kind", _set("bands.0.uncertainty.absolute_unit", "N")),
    ("absolute unit unknown", _set("bands.0.uncertainty.absolute_unit", "Paa")),
    ("absolute unit with a number", _set("bands.0.uncertainty.absolute_unit", "5 Pa")),
    ("absolute unit newline", _set("bands.0.uncertainty.absolute_unit", "P\na")),
    ("absolute unit alone", _set("bands.0.uncertainty.absolute", 0.0)),
    ("no uncertainty", _set("bands.0.uncertainty", capability_pb2.ExpandedUncertainty())),
    ("k zero defaults", _set("bands.0.uncertainty.coverage_factor", 0.0)),
    ("k negative", _set("bands.0.uncertainty.coverage_factor", -2.0)),
    ("k nan", _set("bands.0.uncertainty.coverage_factor", NAN)),
    ("p one", _set("bands.0.uncertainty.coverage_probability", 1.0)),
    ("p above one", _set("bands.0.uncertainty.coverage_probability", 1.5)),
    ("p negative", _set("bands.0.uncertainty.coverage_probability", -0.5)),
    # texts and numbers
    ("method empty", _set("method_code", "")),
    ("method blank", _set("method_code", "   ")),
    ("method too long", _set("method_code", "J" * 121)),
    ("measurand empty", _set("measurand", common_pb2.LocalizedText())),
    ("measurand too long", _set("measurand.en", "p" * 501)),
    ("measurand padded", _set("measurand.zh", "  压力  ")),
    ("instrument too long", _set("instrument_type.zh", "仪" * 501)),
    ("conditions too long", _set("conditions", "c" * 2001)),
    ("basis too long", _set("basis", "b" * 501)),
    ("keyword blank", _set("keywords", ["ok", "  "])),
    ("keyword too long", _set("keywords", ["k" * 501])),
    ("keyword padded", _set("keywords", [" gauge "])),
    ("lead time negative", _set("lead_time_days", -1)),
    ("capacity negative", _set("capacity_per_month", -1)),
    ("price negative", _set("price_cny", -5.0)),
    ("price nan", _set("price_cny", NAN)),
    ("price inf", _set("price_cny", INF)),
]


@pytest.mark.parametrize("name, mutate", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["pressure", "temperature"])
def test_paths_agree_on_odd_and_invalid_records(name, mutate, kind):
    msg = _base(kind)
    try:
        mutate(msg)
    except (ValueError, TypeError):  # e.g. an enum value the proto runtime itself refuses
        pytest.skip("not representable")
    _agree(msg)


@pytest.mark.parametrize("field", ["capability", "event.capability"])
def test_error_fields_carry_the_callers_prefix(field):
    msg = _base()
    msg.bands[0].unit = "N*m"
    outcome = _agree(msg, field=field)
    assert outcome[0] == "error" and outcome[2].endswith("bands[0].unit")
    assert _agree(msg, centre_id="Bad Id")[0] == "error"
    assert _agree(_base(), version=0)[0] == "error"


def test_temperature_below_absolute_zero_and_negative_mass():
    msg = _base("temperature")
    msg.bands[0].min = -300.0
    msg.bands[0].unit = "°C"
    assert _agree(msg)[0] == "error"
    mass = next((c for c in CAPS if c.quantity_kind == "mass" and c.bands), None)
    if mass is not None:
        m = protoconv.capability_to_proto(mass)
        m.bands[0].min = -1.0
        assert _agree(m)[0] == "error"


# ---- property: random mixes of valid and invalid field values ------------------------------------------

_units = st.sampled_from(["MPa", "kPa", "Pa", "bar", "psi", "兆帕", "℃", "°C", "K", "N*m", "牛·米", "kPaa", "",
                          " kPa", "%", "%RH", "mV", "Hz", "rpm", "r/min", "deg", "1"])
_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-6, 0.0002, 25.0, -0.1, 1e300]))
_kinds = st.sampled_from(["pressure", "temperature", "torque", "relative_humidity", "voltage", "frequency",
                          "rotational_speed", "angle", "mass", "energy", "", "presure"])


@st.composite
def messages(draw):
    msg = protoconv.capability_to_proto(draw(st.sampled_from(CAPS)))
    if draw(st.booleans()):
        msg.quantity_kind = draw(_kinds)
    if draw(st.booleans()):
        msg.service_kind = draw(st.sampled_from(list(range(0, 10))))
    for b in msg.bands:
        if draw(st.booleans()):
            b.unit = draw(_units)
        if draw(st.booleans()):
            b.min, b.max = draw(_floats), draw(_floats)
        u = b.uncertainty
        if draw(st.booleans()):
            u.relative = draw(_floats)
        if draw(st.booleans()):
            u.absolute = draw(_floats)
            u.absolute_unit = draw(_units)
        if draw(st.booleans()):
            u.coverage_factor, u.coverage_probability = draw(_floats), draw(_floats)
    if draw(st.booleans()):
        msg.price_cny = draw(_floats)
    if draw(st.booleans()):
        msg.lead_time_days = draw(st.integers(-3, 3))
    return msg


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_paths_agree_on_random_records(msg):
    _agree(msg)
