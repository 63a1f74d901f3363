"""Fuzz test of both gRPC APIs against real servers: no input, however broken, is answered UNKNOWN or
INTERNAL (issue 9.5, 8.5).

A gateway and a centre started by infra/federation.py on their own Kafka broker (the mutating RPCs
really publish capabilities and submit requests: another federation sharing the broker would see them).
Inputs come from hypothesis strategies built from the protobuf descriptors (every field of every request
message of both services, so a new field is fuzzed without touching this file), from one-field mutations
of valid requests (seed capabilities and profile, a routable need, real request ids), and from raw bytes
sent through a generic channel call. Each hypothesis example is a batch of calls sent concurrently.

It prints how many inputs were sent, how long it took and the status codes seen; at the end an ordinary
request still reaches ACCEPTED.
"""

from __future__ import annotations

import collections
import math
import re
import time

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from infra.devstack import KafkaBroker
from infra.federation import SEED_DIR, Federation
from metrofed import client, protoconv
from metrofed.bus import topics
from metrofed.bus.admin import ensure_topics
from metrofed.domain.access import Role
from metrofed.seed import load_seed_file
from metrofed.v1 import capability_pb2 as cp
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import common_pb2 as cm
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import pressure_need, wait_for_catalog, wait_for_state

pytestmark = pytest.mark.e2e

CENTRE = "hz-oil-gas"
# No generated input uses this quantity kind (hz-oil-gas offers none): the final check publishes a
# capability of it and routes a need to it, whatever the fuzzing left in the catalog.
RESERVED_KIND = "sound_pressure_level"
BATCH = 24
EXAMPLES = 440  # x BATCH = 10,560 generated calls, plus the raw-bytes calls
RAW_EXAMPLES = 60
FORBIDDEN = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
FIELD_FIRST = re.compile(r"^[a-z_][a-z0-9_]*(\[\d+\])?(\.[a-z_][a-z0-9_]*(\[\d+\])?)*: ")
SERVICES = {"gateway": gw.DESCRIPTOR.services_by_name["GatewayService"],
            "centre": cs.DESCRIPTOR.services_by_name["CentreService"]}


# ---- the federation ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzz_federation(tmp_path_factory, pki):
    broker = KafkaBroker(tmp_path_factory.mktemp("fuzz-kafka"), pki_home=pki.home)  # secured as the session's
    fed = None
    try:
        broker.start(timeout=120)
        ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS, security=broker.admin_security)
        fed = Federation(broker.bootstrap, tmp_path_factory.mktemp("fuzz-federation"), broker.ca, zipkin_endpoint="",
                         extra_env={"METROFED_SILENCE_SECONDS": "3600", "ZIPKIN_ENDPOINT": ""})
        fed.start_centre(SEED_DIR / f"{CENTRE}.yaml")
        fed.wait_ready(f"centre-{CENTRE}", timeout=120)
        fed.start_gateway()
        fed.wait_ready("gateway", timeout=120)
        wait_for_catalog(fed.gateway_as("fuzz", Role.OPERATOR), 1, timeout=60)
        yield fed
    finally:
        if fed is not None:
            fed.stop()
        broker.stop()


# ---- strategies from the descriptors ----------------------------------------------------------------

_CLASSES: dict[str, type] = {}


def message_class(desc):
    cls = _CLASSES.get(desc.full_name)
    if cls is None:
        cls = _CLASSES[desc.full_name] = message_factory.GetMessageClass(desc)
    return cls


SEED = load_seed_file(SEED_DIR / f"{CENTRE}.yaml")
SEED_CAPS = [protoconv.capability_to_proto(c) for c in SEED.capabilities]
SEED_PROFILE = protoconv.centre_to_proto(SEED.profile)

NICE_TEXT = ["", " ", "MPa", "kPa", "℃", "°C", "N·m", "%", "%RH", "r/min", "dB(A)", "m**3/h", "μm", "兆帕",
             "bar**1000000", "Pa**1e9", "m**-999", "2**1000**1000", "9**9**9", "(" * 50 + "m" + ")" * 50,
             "m" + "*m" * 40, "EPa**12*EPa**12*EPa**12*EPa**12", "1/0", "MPa/0", "nan", "inf", "-inf", "1e999",
             "pressure", "temperature", "torque", "bogus-kind", CENTRE, "hz-oil-gas\n", "HZ-OIL-GAS",
             "pressure-transmitter-cal", "a\x00b", "\x00", "\x1b[31mred", "\u200b", "\u202e", "\ufeff", "🙂" * 10,
             "压力变送器", "扭矩扳手", "K型热电偶", "calibration", "2026-12-31", "2020-01-01", "2026-02-30",
             "99999-01-01", "0001-01-01", "20261231", "2026-W01-1", "2026-12-31T23:59", "２０２６-１２-３１",
             "JJG 52-2013", "CNAS L0123", "'; DROP TABLE requests; --", "%s%s%n", "{0}", "../../etc/passwd",
             "x" * 65, "x" * 201, "x" * 2001, "é" * 10_001]
HUGE_TEXT = ["x" * 100_000, "x" * 2_200_000, "y" * 4_500_000]  # over the certificate limit; over the message limit
TEXT = st.one_of(
    st.sampled_from(NICE_TEXT),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.text(st.characters(codec="ascii"), max_size=12),
    st.builds(lambda s, n: s * n, st.sampled_from(["a", "\x00", "中", "\n", "-"]), st.integers(0, 3000)),
).filter(lambda s: RESERVED_KIND not in s and "dB" not in s)
# Megabytes are slow to send: one top-level string in 400 (some tens per run).
# (137, not 0: hypothesis draws the bounds of a range far more often than 1 in 400.)
TEXT_WITH_HUGE = st.integers(0, 399).flatmap(lambda i: st.sampled_from(HUGE_TEXT) if i == 137 else TEXT)
DOUBLE = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1.0, -1.0, 25.0, 1e18, 1e19, -1e19, 1e308, 5e-324, math.nan,
                                    math.inf, -math.inf]))


def int_strategy(bits: int, signed: bool = True):
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, 1, -1 if signed else 2, 3650, 3651]),
                     st.integers(-3, 300).filter(lambda x: lo <= x <= hi))


INT32, INT64 = int_strategy(32), int_strategy(64)
_FD = FieldDescriptor


def scalar_strategy(fd, huge_ok: bool):
    t = fd.type
    if t == _FD.TYPE_STRING:
        return TEXT_WITH_HUGE if huge_ok else TEXT
    if t in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return DOUBLE
    if t == _FD.TYPE_BOOL:
        return st.booleans()
    if t == _FD.TYPE_ENUM:
        known = sorted(fd.enum_type.values_by_number)
        return st.one_of(st.sampled_from(known), st.integers(-3, 40), st.sampled_from([-(2**31), 2**31 - 1]))
    if t in (_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64):
        return INT64
    if t in (_FD.TYPE_UINT32, _FD.TYPE_FIXED32):
        return int_strategy(32, signed=False)
    if t in (_FD.TYPE_UINT64, _FD.TYPE_FIXED64):
        return int_strategy(64, signed=False)
    if t == _FD.TYPE_BYTES:
        return st.binary(max_size=64)
    return INT32


@st.composite
def message_of(draw, desc, depth: int = 0, huge_ok: bool = True):
    """Any message of type ``desc``: each field set or not, with any value its type allows."""
    msg = message_class(desc)()
    for fd in desc.fields:
        if not draw(st.booleans()):
            continue
        if fd.type == _FD.TYPE_MESSAGE:
            if depth >= 4:
                continue
            sub = message_of(fd.message_type, depth + 1, huge_ok=False)
            if fd.is_repeated:
                for item in draw(st.lists(sub, max_size=3)):
                    getattr(msg, fd.name).add().CopyFrom(item)
            else:
                getattr(msg, fd.name).CopyFrom(draw(sub))
        elif fd.is_repeated:
            getattr(msg, fd.name).extend(draw(st.lists(scalar_strategy(fd, False), max_size=4)))
        else:
            setattr(msg, fd.name, draw(scalar_strategy(fd, huge_ok and depth == 0)))
    return msg


# ---- mutations of valid requests --------------------------------------------------------------------

def valid_requests(request_ids: list[str]) -> dict[str, list]:
    """Per RPC, requests that would be accepted as they are (the seeds mutations start from)."""
    need = pressure_need()
    ids = request_ids or ["00000000-0000-0000-0000-000000000000"]
    return {
        "SearchCatalog": [gw.SearchCatalogRequest(text="压力变送器", limit=5),
                          gw.SearchCatalogRequest(quantity_kind="pressure", range=rq.MeasuringRange(
                              min=0, max=10, unit="MPa"), city="杭州", limit=3, offset=1)],
        "RouteNeed": [gw.RouteNeedRequest(need=need)],
        "SubmitRequest": [gw.SubmitRequestRequest(enterprise_id="fuzz-enterprise", need=need)],
        "GetRequest": [gw.GetRequestRequest(request_id=i) for i in ids],
        "ListRequests": [gw.ListRequestsRequest(enterprise_id="fuzz-enterprise", limit=3)],
        "CancelRequest": [gw.CancelRequestRequest(request_id=i, reason="fuzz") for i in ids],
        "GetProfile": [cs.GetProfileRequest()],
        "RegisterCentre": [cs.RegisterCentreRequest(profile=SEED_PROFILE)],
        "PublishCapability": [cs.PublishCapabilityRequest(capability=c) for c in SEED_CAPS],
        "ReviseCapability": [cs.ReviseCapabilityRequest(capability=c) for c in SEED_CAPS],
        "WithdrawCapability": [cs.WithdrawCapabilityRequest(capability_id="no-such-capability", reason="fuzz")],
        "ListCapabilities": [cs.ListCapabilitiesRequest()],
        "ListInbox": [cs.ListInboxRequest(state=rq.REQUEST_STATE_ACCEPTED)],
        "AcceptRequest": [cs.AcceptRequestRequest(request_id=i, note="ok") for i in ids],
        "DeclineRequest": [cs.DeclineRequestRequest(request_id=i, reason="busy") for i in ids],
        "CompleteRequest": [cs.CompleteRequestRequest(request_id=i, note="done") for i in ids],
        "GetCertificate": [cs.GetCertificateRequest(request_id=i) for i in ids],
    }


def leaf_fields(msg, path=()):
    """(path, field descriptor) of every field reachable in ``msg``'s type (nested messages down 3)."""
    out = []
    for fd in msg.DESCRIPTOR.fields:
        out.append((path, fd))
        if fd.type == _FD.TYPE_MESSAGE and not fd.is_repeated and len(path) < 3:
            out.extend(leaf_fields(getattr(msg, fd.name), (*path, fd.name)))
    return out


@st.composite
def mutated(draw, seed_msg):
    """``seed_msg`` with exactly one field (at any depth) replaced by any value of its type, or a
    repeated field grown past its limit."""
    msg = type(seed_msg)()
    msg.CopyFrom(seed_msg)
    fields = leaf_fields(msg)
    if not fields:
        return msg
    path, fd = draw(st.sampled_from(fields))
    holder = msg
    for name in path:
        holder = getattr(holder, name)
    if fd.is_repeated:
        target = getattr(holder, fd.name)
        if fd.type == _FD.TYPE_MESSAGE:
            n = draw(st.sampled_from([0, 1, 101, 1000]))
            template = target[0] if len(target) else None
            del target[:]
            for _ in range(n):
                item = target.add()
                if template is not None:
                    item.CopyFrom(template)
                else:
                    item.CopyFrom(draw(message_of(fd.message_type, 1, huge_ok=False)))
        else:
            del target[:]
            target.extend(draw(st.lists(scalar_strategy(fd, False), max_size=60)))
    elif fd.type == _FD.TYPE_MESSAGE:
        getattr(holder, fd.name).CopyFrom(draw(message_of(fd.message_type, 1, huge_ok=False)))
    else:
        setattr(holder, fd.name, draw(scalar_strategy(fd, True)))
    return msg


# ---- calls ------------------------------------------------------------------------------------------

def call_strategy(valid: dict[str, list]):
    calls = []
    for service_name, service in SERVICES.items():
        for method in service.methods:
            calls.append(st.tuples(st.just(service_name), st.just(method.name),
                                   message_of(method.input_type)))
            if method.name in valid:  # an RPC added later is fuzzed from its descriptor until it has seeds here
                calls.append(st.tuples(st.just(service_name), st.just(method.name),
                                       st.sampled_from(valid[method.name]).flatmap(mutated)))
    return st.one_of(calls)


@st.composite
def corrupted(draw, valid: dict[str, list]):
    """A valid request's bytes with one defect: a flipped byte, a cut, a non-UTF-8 string, a huge length."""
    raw = bytearray(draw(st.sampled_from([m for ms in valid.values() for m in ms])).SerializeToString())
    if not raw:
        return draw(st.binary(min_size=1, max_size=64))
    i = draw(st.integers(0, len(raw) - 1))
    how = draw(st.sampled_from(["flip", "truncate", "invalid-utf8", "huge-length"]))
    if how == "flip":
        raw[i] ^= 0xFF
    elif how == "truncate":
        raw = raw[:i]
    elif how == "invalid-utf8":
        raw[i:i] = b"\x0a\x02\xc3\x28"  # field 1 as a 2-byte string that is not UTF-8
    else:
        raw[i:i] = b"\x12\xff\xff\xff\xff\x0f"
    return bytes(raw)


def raw_strategy(valid: dict[str, list]):
    methods = [(s, m.name) for s, service in SERVICES.items() for m in service.methods]
    return st.tuples(st.sampled_from(methods), st.one_of(st.binary(max_size=200), corrupted(valid)))


def oversized(request_id: str) -> list[tuple[str, str, object]]:
    """The issue's cases and the sizes random draws seldom reach (they are slow to send in bulk)."""
    bands = cs.PublishCapabilityRequest(capability=SEED_CAPS[0])
    bands.capability.bands.extend([bands.capability.bands[0]] * 30_000)
    unit = lambda u: gw.RouteNeedRequest(need=rq.Need(instrument_type="gauge", range=rq.MeasuringRange(  # noqa: E731
        min=0, max=1, unit=u), tolerance=rq.Tolerance(value=1, unit="%")))
    return [
        ("centre", "PublishCapability", bands),
        ("gateway", "RouteNeed", unit("bar**1000000")),
        ("gateway", "RouteNeed", unit("Pa**1e9")),
        ("gateway", "RouteNeed", unit("2**1000**1000")),
        ("gateway", "GetRequest", gw.GetRequestRequest(request_id="a\x00b")),
        ("gateway", "SubmitRequest", gw.SubmitRequestRequest(enterprise_id="e\x00", need=pressure_need())),
        ("gateway", "SubmitRequest", gw.SubmitRequestRequest(enterprise_id="y" * 4_500_000)),
        ("gateway", "SearchCatalog", gw.SearchCatalogRequest(text="压" * 100_000)),
        ("centre", "CompleteRequest", cs.CompleteRequestRequest(request_id=request_id,
                                                                result_certificate="<x/>" * 600_000)),
        ("centre", "DeclineRequest", cs.DeclineRequestRequest(request_id=request_id, reason="r" * 1_000_000)),
    ]


class Tally:
    def __init__(self):
        self.codes: collections.Counter = collections.Counter()
        self.bad: list[str] = []
        self.sent = 0

    def record(self, what: str, code: grpc.StatusCode, details: str | None) -> None:
        self.sent += 1
        self.codes[code.name] += 1
        if code in FORBIDDEN:
            self.bad.append(f"{what}: {code.name} {details!r}"[:600])
        elif code == grpc.StatusCode.INVALID_ARGUMENT:
            if not FIELD_FIRST.match(details or "") or len(details or "") > 1000:
                self.bad.append(f"{what}: INVALID_ARGUMENT without a field first or too long: {details!r}"[:600])


FUZZ_ENTERPRISE = "fuzz-enterprise"


class ByPolicy:
    """A service's stub that calls each RPC with a credential whose role may call it (the policy of
    metrofed/trust/policy.py), so the inputs reach the validation behind the authorization: an enterprise at
    the gateway, the centre's own staff at the centre, an operator for what only operators do."""

    def __init__(self, fed, service: str):
        from metrofed.trust.policy import POLICY

        self._policy, self._prefix = POLICY, f"/metrofed.v1.{'GatewayService' if service == 'gateway' else 'CentreService'}/"
        if service == "gateway":
            self._stubs = {Role.ENTERPRISE: fed.gateway_as(FUZZ_ENTERPRISE), Role.OPERATOR: fed.gateway_as("fuzz", Role.OPERATOR)}
        else:
            self._stubs = {Role.CENTRE: fed.centre_as(CENTRE), Role.OPERATOR: fed.centre_as(CENTRE, Role.OPERATOR, "fuzz")}

    def __getattr__(self, method: str):
        allowed = self._policy[self._prefix + method]
        role = next(r for r in (Role.ENTERPRISE, Role.CENTRE, Role.OPERATOR) if r in allowed and r in self._stubs)
        return getattr(self._stubs[role], method)


def send_batch(stubs, batch, tally: Tally, timeout: float = 20.0) -> None:
    futures = []
    for service_name, method, msg in batch:
        futures.append((f"{service_name}.{method}({type(msg).__name__}: {str(msg)[:300]!r})",
                        getattr(stubs[service_name], method).future(msg, timeout=timeout)))
    for what, fut in futures:
        try:
            fut.result()
            tally.record(what, grpc.StatusCode.OK, None)
        except grpc.RpcError as err:
            tally.record(what, err.code(), err.details())


# ---- the test ---------------------------------------------------------------------------------------

@pytest.mark.timeout(900)  # ~150 s on a loaded 2-core machine; the project's 300 s default is too tight
def test_no_input_gets_unknown_or_internal_from_either_api(fuzz_federation):
    fed = fuzz_federation
    gw_endpoint = fed.procs["gateway"].endpoint
    centre_endpoint = fed.procs[f"centre-{CENTRE}"].endpoint
    stubs = {"gateway": ByPolicy(fed, "gateway"), "centre": ByPolicy(fed, "centre")}
    real_ids = [stubs["gateway"].SubmitRequest(gw.SubmitRequestRequest(
        enterprise_id="fuzz-enterprise", need=pressure_need(max_mpa=m)), timeout=20).request.request_id
        for m in (5, 10, 20)]
    valid = valid_requests(real_ids)
    tally = Tally()
    started = time.monotonic()
    send_batch(stubs, oversized(real_ids[0]), tally)  # rare in the random draws: sent once each

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(call_strategy(valid), min_size=BATCH, max_size=BATCH))
    def fuzz_typed(batch):
        send_batch(stubs, batch, tally)

    fuzz_typed()
    typed = tally.sent
    typed_seconds = time.monotonic() - started

    raw_channels = {"gateway": client.channel(gw_endpoint, fed.credential(Role.ENTERPRISE, FUZZ_ENTERPRISE)),
                    "centre": client.channel(centre_endpoint, fed.credential(Role.CENTRE, CENTRE))}
    full = {"gateway": "metrofed.v1.GatewayService", "centre": "metrofed.v1.CentreService"}

    @settings(max_examples=RAW_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(raw_strategy(valid), min_size=10, max_size=10))
    def fuzz_raw(batch):
        futures = []
        for (service_name, method), raw in batch:
            call = raw_channels[service_name].unary_unary(f"/{full[service_name]}/{method}")
            futures.append((f"raw {service_name}.{method}({raw[:80]!r})", call.future(raw, timeout=20)))
        for what, fut in futures:
            try:
                fut.result()
                tally.record(what, grpc.StatusCode.OK, None)
            except grpc.RpcError as err:
                tally.record(what, err.code(), err.details())

    fuzz_raw()
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {tally.sent} inputs ({typed} typed in {typed_seconds:.1f} s, {tally.sent - typed} raw bytes) "
          f"in {elapsed:.1f} s; "
          f"codes: {dict(tally.codes.most_common())}")
    assert typed >= 10_000
    assert not tally.bad, f"{len(tally.bad)} answers broke the rules; first ones:\n" + "\n".join(tally.bad[:15])
    for proc in fed.procs.values():
        assert proc.alive, f"{proc.name} died during the fuzzing:\n{proc.log_tail()}"
    still_works(stubs)


def still_works(stubs) -> None:
    """After the fuzzing an ordinary flow still goes through: restore the centre's profile (a valid
    mutation may have turned auto-accept off), publish a capability of the kind no input used, and a
    need for it reaches ACCEPTED."""
    stubs["centre"].RegisterCentre(cs.RegisterCentreRequest(profile=SEED_PROFILE), timeout=20)
    cap = cp.Capability(
        capability_id="fuzz-final-check", service_kind=cm.SERVICE_KIND_CALIBRATION, quantity_kind=RESERVED_KIND,
        measurand=cm.LocalizedText(zh="声级计", en="sound level meter"),
        instrument_type=cm.LocalizedText(zh="声级计", en="sound level meter"), method_code="JJG 188-2017",
        bands=[cp.RangeBand(min=30, max=130, unit="dB", uncertainty=cp.ExpandedUncertainty(
            absolute=0.2, absolute_unit="dB", coverage_factor=2, coverage_probability=0.95))],
        site=cm.SITE_LAB, lead_time_days=5, price_cny=300, capacity_per_month=1000, basis="CNAS L0000",
        keywords=["声级计", "sound level meter"])
    try:
        stubs["centre"].PublishCapability(cs.PublishCapabilityRequest(capability=cap), timeout=20)
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.FAILED_PRECONDITION:  # a retried run on the same database
            raise
        stubs["centre"].ReviseCapability(cs.ReviseCapabilityRequest(capability=cap), timeout=20)
    deadline = time.monotonic() + 30
    while not stubs["gateway"].SearchCatalog(gw.SearchCatalogRequest(
            quantity_kind=RESERVED_KIND, centre_id=CENTRE), timeout=20).total:
        assert time.monotonic() < deadline, "the new capability never reached the gateway's catalog"
        time.sleep(0.2)
    need = rq.Need(instrument_type="sound level meter", range=rq.MeasuringRange(min=40, max=120, unit="dB"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_ABSOLUTE, value=1.0, unit="dB"),
                   service_kind=cm.SERVICE_KIND_CALIBRATION)
    req = stubs["gateway"].SubmitRequest(gw.SubmitRequestRequest(need=need),
                                         timeout=20).request
    assert req.assigned_centre_id == CENTRE, req
    wait_for_state(stubs["gateway"], req.request_id, rq.REQUEST_STATE_ACCEPTED, timeout=60)
