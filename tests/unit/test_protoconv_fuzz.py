"""Any wire Need either becomes a valid domain Need or raises DomainError naming a field (INVALID_ARGUMENT at
the edge) -- never another exception (INTERNAL) -- and a valid one always routes."""

import datetime as dt
from hypothesis import given, settings, strategies as st, HealthCheck
from metrofed.protoconv import need_from_proto
from metrofed.domain.capability import DomainError
from metrofed.domain.catalog import route_need
from metrofed.seed import seed_catalog
from metrofed.v1 import request_pb2 as rq

cat = seed_catalog()
units = ["MPa","kPa","℃","°C","K","N·m","N*m","A","V","%","%RH","m**3/h","mm","µm","r/min","rpm","Hz","g","kg","", "xyz", "兆帕", "1/0", "MPa/0", "nan", "degC*degC", "m^-1", "dB", "°", "rad/s"]
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -1.0, 1e308, -0.0, 25.0, 1000.0]))
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(m=st.text(max_size=30), it=st.sampled_from(["", "压力变送器", "torque wrench", "K型热电偶", "直流充电桩", "水表"]),
       qk=st.sampled_from(["", "pressure", "temperature", "torque", "bogus"]),
       lo=floats, hi=floats, unit=st.sampled_from(units), tk=st.integers(0, 5), tv=floats, tu=st.sampled_from(units),
       sk=st.integers(0, 10), dr=st.integers(0, 3), ratio=floats, dl=st.sampled_from(["", "2026-12-31", "2020-01-01", "garbage", "2026-02-30"]),
       q=st.integers(-5, 10**9), site=st.integers(0, 4), legal=st.sampled_from([None, True, False]))
def test_any_wire_need_is_a_domain_error_or_routes(m, it, qk, lo, hi, unit, tk, tv, tu, sk, dr, ratio, dl, q, site, legal):
    msg = rq.Need(measurand=m, instrument_type=it, quantity_kind=qk, range=rq.MeasuringRange(min=lo, max=hi, unit=unit),
                  tolerance=rq.Tolerance(kind=tk, value=tv, unit=tu), service_kind=sk, decision_rule=rq.DecisionRule(kind=dr, min_ratio=ratio),
                  deadline=dl, quantity=max(min(q, 2**31-1), -2**31), site=site)
    if legal is not None:
        msg.legal_use = legal
    try:
        need = need_from_proto(msg, today=dt.date(2026, 11, 27))
    except DomainError:
        return
    route_need(cat.current(), need, {}, dt.date(2026, 11, 27))
