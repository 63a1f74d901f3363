"""The input limits of both gRPC APIs (metrofed.domain.limits, applied by metrofed.api_input): every
request field has a limit, each violation is a DomainError naming the field path and the limit, and no
message echoes more than a short prefix of what was sent."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from metrofed import api_input, protoconv
from metrofed.bus import codec
from metrofed.domain import limits, records
from metrofed.domain.capability import DomainError
from metrofed.domain.need import need_from_fields
from metrofed.errors import NotFound
from metrofed.seed import load_seed
from metrofed.v1 import capability_pb2 as cp
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import common_pb2 as cm
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq

DOC = Path(__file__).resolve().parents[2] / "docs" / "input-limits.md"
SERVICES = (gw.DESCRIPTOR.services_by_name["GatewayService"], cs.DESCRIPTOR.services_by_name["CentreService"])
HUGE = "x" * 100_000


def request_fields() -> set[str]:
    """"Message.field" for every field reachable from a request message of either service."""
    seen_messages: set[str] = set()
    out: set[str] = set()

    def walk(desc):
        if desc.full_name in seen_messages:
            return
        seen_messages.add(desc.full_name)
        for fd in desc.fields:
            out.add(f"{desc.name}.{fd.name}")
            if fd.message_type is not None:
                walk(fd.message_type)

    for service in SERVICES:
        for method in service.methods:
            walk(method.input_type)
    return out


def test_every_request_field_of_both_apis_has_exactly_one_limit():
    fields = request_fields()
    assert fields, "the descriptors list no request field"
    missing = sorted(fields - set(limits.LIMITS))
    stale = sorted(set(limits.LIMITS) - fields)
    assert not missing, f"request fields without a limit (add them to metrofed/domain/limits.py): {missing}"
    assert not stale, f"limits for fields no request has: {stale}"


def test_message_short_names_are_unique():
    # The table is keyed by short message name: two messages of one name would share limits.
    names = [m.name for f in (cp, cs, cm, gw, rq) for m in f.DESCRIPTOR.message_types_by_name.values()]
    assert len(names) == len(set(names))


def test_doc_table_is_the_code_table():
    text = DOC.read_text(encoding="utf-8")
    start, end = "<!-- limits-table:start -->\n", "<!-- limits-table:end -->"
    assert start in text and end in text
    table = text[text.index(start) + len(start):text.index(end)]
    assert table == limits.render_markdown(), "regenerate: .venv/bin/python -m metrofed.domain.limits"


def _need(**kw) -> rq.Need:
    need = rq.Need(instrument_type="pressure transmitter", range=rq.MeasuringRange(min=0, max=25, unit="MPa"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=0.1))
    for k, v in kw.items():
        if hasattr(v, "DESCRIPTOR"):
            getattr(need, k).CopyFrom(v)
        else:
            setattr(need, k, v)
    return need


SEED = load_seed()


def _cap() -> cp.Capability:
    return protoconv.capability_to_proto(SEED[0].capabilities[0])


def _with(msg, mutate):
    mutate(msg)
    return msg


CASES = [
    # (name, request, field path, words the reason must hold)
    ("NUL in an id", gw.SubmitRequestRequest(enterprise_id="acme\x00", need=_need()), "enterprise_id", "NUL"),
    ("long id", gw.GetRequestRequest(request_id="r" * 65), "request_id", "at most 64"),
    ("control char in an id", cs.AcceptRequestRequest(request_id="a\x1bb"), "request_id", "U+001B"),
    ("invisible char in an id", gw.CancelRequestRequest(request_id="a\u200bb"), "request_id", "U+200B"),
    ("newline in a one-line text", gw.SearchCatalogRequest(city="无锡\n"), "city", "U+000A"),
    ("huge search text", gw.SearchCatalogRequest(text=HUGE), "text", "at most 200"),
    ("huge measurand", gw.RouteNeedRequest(need=_need(measurand=HUGE)), "need.measurand", "at most 200"),
    ("NUL in a note", cs.AcceptRequestRequest(request_id="r", note="ok\x00"), "note", "NUL"),
    ("long reason", cs.DeclineRequestRequest(request_id="r", reason=HUGE), "reason", "at most 2,000"),
    ("long unit", gw.RouteNeedRequest(need=_need(range=rq.MeasuringRange(min=0, max=1, unit="m" * 65))),
     "need.range.unit", "at most 64"),
    ("NaN range", gw.RouteNeedRequest(need=_need(range=rq.MeasuringRange(min=math.nan, max=1, unit="MPa"))),
     "need.range.min", "finite"),
    ("infinite tolerance", gw.SubmitRequestRequest(enterprise_id="e", need=_need(
        tolerance=rq.Tolerance(kind=1, value=math.inf, unit="MPa"))), "need.tolerance.value", "finite"),
    ("absurd range value", gw.SearchCatalogRequest(range=rq.MeasuringRange(min=0, max=1e300, unit="Pa")),
     "range.max", "1e+18"),
    ("unknown enum", gw.RouteNeedRequest(need=_need(service_kind=99)), "need.service_kind", "unknown value 99"),
    ("unknown tolerance kind", gw.RouteNeedRequest(need=_need(tolerance=rq.Tolerance(kind=-7, value=1))),
     "need.tolerance.kind", "unknown value -7"),
    ("unknown inbox state", cs.ListInboxRequest(state=4242), "state", "unknown value 4242"),
    ("negative quantity", gw.SubmitRequestRequest(enterprise_id="e", need=_need(quantity=-1)), "need.quantity",
     "between 0 and 1,000,000"),
    ("limit too high", gw.SearchCatalogRequest(limit=2**31 - 1), "limit", "between 0 and 200"),
    ("negative offset", gw.SearchCatalogRequest(offset=-(2**31)), "offset", "between 0 and 100,000"),
    ("list limit", gw.ListRequestsRequest(enterprise_id="e", limit=-1), "limit", "between 0 and 500"),
    ("30,000 bands", cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: c.bands.extend(
        [c.bands[0]] * 30_000))), "capability.bands", "at most 100"),
    ("NaN in a band", cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: setattr(
        c.bands[0], "max", math.nan))), "capability.bands[0].max", "finite"),
    ("negative uncertainty", cs.ReviseCapabilityRequest(capability=_with(_cap(), lambda c: setattr(
        c.bands[0].uncertainty, "relative", -1.0))), "capability.bands[0].uncertainty.relative", "between 0"),
    ("too many keywords", cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: c.keywords.extend(
        ["k"] * 51))), "capability.keywords", "at most 50"),
    ("NUL in a keyword", cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: c.keywords.extend(
        ["ok", "b\x00d"]))), "capability.keywords[", "NUL"),
    ("lead time", cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: setattr(
        c, "lead_time_days", 2**31 - 1))), "capability.lead_time_days", "between 0 and 3,650"),
    ("NUL in a localized name", cs.RegisterCentreRequest(profile=cp.CentreProfile(
        centre_id="sh-icv", name=cm.LocalizedText(zh="中心\x00"))), "profile.name.zh", "NUL"),
    ("too many industries", cs.RegisterCentreRequest(profile=cp.CentreProfile(
        centre_id="sh-icv", industries=["i"] * 51)), "profile.industries", "at most 50"),
    ("huge certificate", cs.CompleteRequestRequest(request_id="r", result_certificate="<x/>" * 600_000),
     "result_certificate", "at most 2,097,152"),
    ("withdraw reason", cs.WithdrawCapabilityRequest(capability_id="c" * 61), "capability_id", "at most 60"),
]


@pytest.mark.parametrize("name,request_msg,field,words", CASES, ids=[c[0] for c in CASES])
def test_each_limit_is_invalid_argument_naming_field_and_limit(name, request_msg, field, words):
    # through the bytes, as the server sees them
    raw = request_msg.SerializeToString()
    decoded = api_input.decode_request(raw, type(request_msg).FromString)
    with pytest.raises(DomainError) as ei:
        api_input.check_limits(decoded)
    assert ei.value.field.startswith(field), ei.value
    assert words in ei.value.reason, ei.value
    assert len(str(ei.value)) < 200, "the message echoes the input"


def test_valid_requests_pass_the_limits():
    for msg in (gw.SubmitRequestRequest(enterprise_id="wuxi-sensor-works", need=_need(city="无锡", legal_use=True)),
                gw.SearchCatalogRequest(text="压力变送器", limit=200, offset=100_000),
                cs.PublishCapabilityRequest(capability=_cap()),
                cs.CompleteRequestRequest(request_id="r", note="line 1\nline 2\tdone")):
        api_input.check_limits(msg)
    for sc in SEED:  # every seeded profile and capability is within the API's limits
        api_input.check_limits(cs.RegisterCentreRequest(profile=protoconv.centre_to_proto(sc.profile)))
        for cap in sc.capabilities:
            api_input.check_limits(cs.PublishCapabilityRequest(capability=protoconv.capability_to_proto(cap)))


# ---- decoding names the field -------------------------------------------------------------------------

def _with_bad_utf8(msg, good: str) -> bytes:
    raw = msg.SerializeToString()
    bad = b"\xff\xfe" + good.encode()[2:]
    assert raw.count(good.encode()) == 1
    return raw.replace(good.encode(), bad)


@pytest.mark.parametrize("msg,marker,field", [
    (gw.SubmitRequestRequest(enterprise_id="ENTERPRISE"), "ENTERPRISE", "enterprise_id"),
    (gw.RouteNeedRequest(need=_need(range=rq.MeasuringRange(min=0, max=1, unit="UNITUNIT"))), "UNITUNIT",
     "need.range.unit"),
    (cs.PublishCapabilityRequest(capability=_with(_cap(), lambda c: c.keywords.extend(["k1", "KEYWORDX"]))),
     "KEYWORDX", "capability.keywords[" ),
    (cs.RegisterCentreRequest(profile=cp.CentreProfile(industries=["a", "b", "INDUSTRY"])), "INDUSTRY",
     "profile.industries[2]"),
])
def test_non_utf8_text_is_invalid_argument_naming_the_field(msg, marker, field):
    raw = _with_bad_utf8(msg, marker)
    with pytest.raises(DomainError) as ei:
        api_input.decode_request(raw, type(msg).FromString)
    assert ei.value.field.startswith(field) and "UTF-8" in ei.value.reason, ei.value


@pytest.mark.parametrize("raw", [b"\xff", b"\x0a\x05ab", b"\x0f\x00", b"\x08" + b"\xff" * 11,
                                 b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"])
def test_undecodable_bytes_are_invalid_argument(raw):
    with pytest.raises(DomainError) as ei:
        api_input.decode_request(raw, gw.SubmitRequestRequest.FromString)
    assert ei.value.field  # "request" or the field where it broke


# ---- unit expressions ---------------------------------------------------------------------------------

ABSURD_UNITS = [
    ("bar**1000000", "exponent"), ("Pa**1e9", "exponent"), ("m**-999", "exponent"), ("bar^1000", "exponent"),
    ("2**1000**1000", "exponent"), ("9**9**9", "chained"), ("m**(1/0)", "exponent"), ("Pa**nan", "exponent"),
    ("(" * 30 + "m" + ")" * 30, "parentheses"), ("m" * 10_000, "at most 64"), ("m" + "*m" * 30, "exponent"),
    ("EPa**12*EPa**12*EPa**12*EPa**12", "overflows"), ("ym**12*ym**12*ym**12*ym**12", "overflows"),
    ("m\x00", "control"), ("1e999*m", "unknown unit"), ("1/0", "unknown unit"), ("MPa/0", "unknown unit"),
]


@pytest.mark.parametrize("text,words", ABSURD_UNITS, ids=[t[:20] for t, _ in ABSURD_UNITS])
def test_absurd_unit_expressions_are_domain_errors_naming_the_field(text, words):
    with pytest.raises(DomainError) as ei:
        need_from_fields(instrument_type="gauge", range_min=0, range_max=1, unit=text, tolerance_value=1,
                         tolerance_unit="%")
    assert ei.value.field == "need.range.unit" and words in ei.value.reason, ei.value
    assert text not in str(ei.value) or len(text) <= limits.ECHO_PREFIX
    with pytest.raises(DomainError) as ei:
        records.band_from_dict({"range": [0, 1], "unit": text, "uncertainty": {"relative": "0.1 %"}},
                               quantity_kind="pressure", path="capabilities[0].bands[2]")
    assert ei.value.field == "capabilities[0].bands[2].unit", ei.value
    with pytest.raises(DomainError) as ei:
        need_from_fields(instrument_type="gauge", range_min=0, range_max=1, unit="Pa", tolerance_value=1,
                         tolerance_unit=text)
    assert ei.value.field == "need.tolerance.unit", ei.value


def test_ordinary_units_still_parse_and_convert():
    from metrofed.domain import units

    for text, factor in [("MPa", 1e6), ("kPa**0.5", 1e3**0.5), ("m^2", 1.0), ("(m/s)**2", 1.0), ("Pa**-12", 1.0),
                         ("kgf/cm2", 98066.5), ("千帕", 1e3), ("N·m", 1.0)]:
        canon = units.parse_unit(text)
        assert units.parse_unit(canon) == canon
        assert math.isclose(units.si_factor(canon)[0], factor, rel_tol=1e-9)


def test_values_that_overflow_in_si_are_domain_errors():
    with pytest.raises(DomainError) as ei:
        need_from_fields(instrument_type="gauge", range_min=0, range_max=1e300, unit="EPa",
                         tolerance_value=1, tolerance_unit="%")
    assert ei.value.field == "need.range" and "SI" in ei.value.reason
    with pytest.raises(DomainError) as ei:
        records.band_from_dict({"range": [0, 1e300], "unit": "EPa", "uncertainty": {"relative": 0.001}},
                               quantity_kind="pressure", path="b")
    assert ei.value.field == "b.range"


# ---- the echo rule ------------------------------------------------------------------------------------

def test_quote_keeps_a_short_prefix():
    assert limits.quote("abc") == "'abc'"
    q = limits.quote("é" * 1000)
    assert q.endswith("…") and q.count("é") == limits.ECHO_PREFIX
    assert limits.quote(1.5) == "1.5"


@pytest.mark.parametrize("make", [
    lambda: NotFound("request", "r" * 10_000),
    lambda: records.capability_from_dict("sh-icv", {"id": "X" * 400, "service_kind": "calibration"}),
    lambda: records.centre_from_dict({"id": "Y" * 400, "name": "n", "city": "c", "province": "p"}),
    lambda: need_from_fields(instrument_type="g", range_min=0, range_max=1, unit="Pa", tolerance_value=1,
                             deadline="D" * 5000),
    lambda: need_from_fields(instrument_type="g", range_min=0, range_max=1, unit="Pa", tolerance_value=1,
                             service_kind="S" * 5000),
    lambda: need_from_fields(instrument_type="g", range_min=0, range_max=1, unit="Pa", tolerance_value=1,
                             quantity_kind="Q" * 5000),
    lambda: records.uncertainty_from_dict({"relative": "R" * 5000}, quantity_kind="pressure", band_unit="Pa",
                                          path="u"),
    lambda: records.uncertainty_from_dict({"absolute": "1 " + "U" * 60}, quantity_kind="pressure",
                                          band_unit="Pa", path="u"),
])
def test_error_messages_never_echo_a_whole_long_input(make):
    try:
        exc = make()
    except (DomainError, LookupError) as raised:
        exc = raised
    text = str(exc)
    assert len(text) < 600, text  # lists of valid values may follow; the input itself only as a prefix
    assert re.search(r"(.)\1{45}", text) is None, text  # no run longer than the echoed prefix


# ---- records and the catalog's fast path agree on the new limits ---------------------------------------

@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.bands.extend([c.bands[0]] * 100), "capability.bands"),
    (lambda c: setattr(c.measurand, "en", "bad\x00"), "capability.measurand.en"),
    (lambda c: setattr(c, "method_code", "JJG\x00"), "capability.method"),
    (lambda c: setattr(c, "conditions", "a\x07"), "capability.conditions"),
    (lambda c: c.keywords.extend(["k"] * 60), "capability.keywords"),
    (lambda c: setattr(c, "lead_time_days", 100_000), "capability.lead_time_days"),
    (lambda c: setattr(c, "capacity_per_month", 2**31 - 1), "capability.capacity_per_month"),
    (lambda c: setattr(c, "price_cny", 1e300), "capability.price_cny"),
    (lambda c: setattr(c.bands[0], "max", 1e308) or setattr(c.bands[0], "unit", "GPa"), "capability.bands[0]"),
])
def test_bus_records_over_the_limits_fail_alike_on_both_decode_paths(mutate, field):
    msg = _cap()
    mutate(msg)
    outcomes = []
    for fn in (protoconv.capability_from_proto_via_dict, codec.capability_from_message):
        with pytest.raises(DomainError) as ei:
            fn(msg, msg.centre_id, msg.version, "capability")
        outcomes.append((ei.value.field, ei.value.reason))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0].startswith(field), outcomes[0]
