"""Any wire Capability either becomes a valid domain Capability or raises DomainError naming a field."""

from hypothesis import given, settings, strategies as st, HealthCheck
from metrofed.protoconv import capability_from_proto
from metrofed.domain.capability import DomainError
from metrofed.v1 import capability_pb2 as cp, common_pb2 as c
units = ["MPa","kPa","℃","°C","K","N·m","A","%","%RH","", "xyz", "兆帕", "1/0", "nan", "degC*degC", "delta_degC", "Pa"]
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e308, -0.0, 25.0]))
band = st.builds(lambda lo, hi, u, r, a, au, k, p: cp.RangeBand(min=lo, max=hi, unit=u, uncertainty=cp.ExpandedUncertainty(relative=r, absolute=a, absolute_unit=au, coverage_factor=k, coverage_probability=p)),
                 floats, floats, st.sampled_from(units), floats, floats, st.sampled_from(units), floats, floats)
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(cid=st.sampled_from(["", "x", "good-id", "BAD ID", "a"*100, "ok-1\n"]), sk=st.integers(0, 12), qk=st.sampled_from(["", "pressure", "temperature", "torque", "bogus"]),
       bands=st.lists(band, max_size=3), site=st.integers(0, 5), lead=st.integers(-5, 10**6), price=floats, cap=st.integers(-5, 10**6),
       method=st.sampled_from(["", "JJG 52-2013", "x"*500]), name=st.text(max_size=20))
def test_any_wire_capability_is_a_domain_error_or_valid(cid, sk, qk, bands, site, lead, price, cap, method, name):
    msg = cp.Capability(capability_id=cid, service_kind=sk, quantity_kind=qk, bands=bands, site=site, lead_time_days=lead,
                        price_cny=price, capacity_per_month=cap, method_code=method,
                        instrument_type=c.LocalizedText(zh=name), measurand=c.LocalizedText(en=name))
    try:
        capability_from_proto(msg, "sh-icv", 1)
    except DomainError:
        pass
