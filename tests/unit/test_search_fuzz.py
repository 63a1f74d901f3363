"""Any SearchCatalog request is answered or refused with a DomainError naming the field (never INTERNAL)."""

from hypothesis import given, settings, strategies as st, HealthCheck
from metrofed.domain.capability import DomainError
from metrofed.seed import seed_catalog
from metrofed.v1 import gateway_service_pb2 as gw, request_pb2 as rq
from gateway.grpc_api import GatewayServicer
cat = seed_catalog()
class App:
    catalog = cat

    def snapshot(self):
        return cat.current()
svc = GatewayServicer(App())
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 25.0]))
@settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
@given(text=st.text(max_size=40), sk=st.integers(0, 12), qk=st.sampled_from(["", "pressure", "torque", "bogus"]),
       prov=st.sampled_from(["", "江苏", "x"]), has_range=st.booleans(), lo=floats, hi=floats,
       unit=st.sampled_from(["MPa", "℃", "xyz", "", "N·m"]), limit=st.integers(-5, 300), offset=st.integers(-5, 10**6))
def test_any_search_request_is_answered_or_a_domain_error(text, sk, qk, prov, has_range, lo, hi, unit, limit, offset):
    req = gw.SearchCatalogRequest(text=text, service_kind=sk, quantity_kind=qk, province=prov, limit=limit, offset=offset)
    if has_range:
        req.range.CopyFrom(rq.MeasuringRange(min=lo, max=hi, unit=unit))
    try:
        svc.SearchCatalog(req, None)
    except DomainError:
        pass
