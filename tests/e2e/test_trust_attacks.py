"""Trying the federation as an attacker would: forged, replayed and misattributed events on every topic,
and callers without, with bad, or with someone else's credentials on both APIs. Every attempt must be
refused; the same flows with valid credentials keep working (the rest of the e2e suite).

The forged records are written with the broker's admin identity — a stolen broker credential, the worst
case (a malicious centre can write the shared topics too: ACLs cannot tell whose capability a record is).
Signatures, not the broker's ACLs, are what stops them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaAdminClient, KafkaProducer

from metrofed.bus import topics
from metrofed.bus.envelope import WITHDRAWN, wrap
from metrofed.bus.signed import H_EVENT_ID, H_EVENT_TYPE, seal_batch
from metrofed.domain.access import Role
from metrofed.protoconv import capability_to_proto
from metrofed.trust.credentials import issue_token
from metrofed.trust.signing import Signer
from metrofed.v1 import capability_pb2 as cp
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import common_pb2, events_pb2
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import E2E_ENTERPRISE, pressure_need, wait_for_state

A, B = "sh-marine-power", "cz-rail"  # two running centres of the e2e federation


# ---- writing records as an attacker ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw(federation):
    producer = KafkaProducer(bootstrap_servers=federation.kafka_bootstrap, acks="all",
                             **federation.admin.client_kwargs())
    yield producer
    producer.close(timeout=5)


def put(raw, topic: str, key: str | None, value: bytes | None, headers=()) -> tuple[str, int, int]:
    meta = raw.send(topic, key=key.encode() if key is not None else None, value=value,
                    headers=list(headers)).get(timeout=10)
    return topic, meta.partition, meta.offset


def dead_lettered(federation, group: str, *origins: tuple[str, int, int], timeout: float = 30.0) -> dict:
    """The refusals are visible to an operator: each origin is in ``group``'s dead-letter topic. Returns
    {origin: reason code}."""
    from kafka import KafkaConsumer, TopicPartition

    from metrofed.bus.dead_letter import DeadLetter

    consumer = KafkaConsumer(bootstrap_servers=federation.kafka_bootstrap, enable_auto_commit=False, group_id=None,
                             **federation.admin.client_kwargs())
    found: dict = {}
    try:
        deadline = time.monotonic() + timeout
        while not consumer.partitions_for_topic(topics.dlq(group)):
            assert time.monotonic() < deadline, f"no dead-letter topic for {group}"
            time.sleep(0.2)
        parts = [TopicPartition(topics.dlq(group), p) for p in consumer.partitions_for_topic(topics.dlq(group))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        while set(origins) - set(found):
            assert time.monotonic() < deadline, f"not dead-lettered in {group}: {set(origins) - set(found)}"
            for records in consumer.poll(timeout_ms=300).values():
                for r in records:
                    d = DeadLetter.from_record(r)
                    if (d.origin_topic, d.origin_partition, d.origin_offset) in origins:
                        found[(d.origin_topic, d.origin_partition, d.origin_offset)] = d.reason_code
    finally:
        consumer.close()
    return found


def sealed(federation, party: str, topic: str, key: str | None, event, producer: str,
           *, withdrawn: int | None = None) -> tuple[bytes | None, list]:
    """A record signed with ``party``'s real key (as that party's outbox relay would sign it)."""
    signer = Signer.from_file(party, federation.home.signing_key_file(party))
    if event is None:
        event_id = str(uuid.uuid4())
        ((value, headers),) = seal_batch(signer, [(topic, key, None, event_id, WITHDRAWN, time.time_ns(), withdrawn)])
        extra = [(H_EVENT_ID, event_id.encode()), (H_EVENT_TYPE, WITHDRAWN.encode())]
        if withdrawn is not None:
            extra.append(("metrofed-withdrawn-version", str(withdrawn).encode()))
        return None, extra + headers
    env = wrap(event, producer)
    ((value, headers),) = seal_batch(signer, [(topic, key, env.SerializeToString(), env.event_id, env.event_type,
                                               0, None)])
    return value, headers


def unsigned(event, producer: str) -> bytes:
    return wrap(event, producer).SerializeToString()


def search(federation, **kw):
    stub = federation.gateway_as("attack-watch", Role.OPERATOR)
    return stub.SearchCatalog(gw.SearchCatalogRequest(limit=200, **kw), timeout=5)


def caps_of(federation, centre_id: str) -> dict[str, cp.Capability]:
    return {h.capability.capability_id: h.capability for h in search(federation, centre_id=centre_id).hits}


def settle(seconds: float = 1.5) -> None:
    """Give a forged record time to (not) take effect: the feed applies live events in ~20 ms."""
    time.sleep(seconds)


def _cap(centre_id: str, capability_id: str, version: int, **over) -> cp.Capability:
    msg = cp.Capability(
        centre_id=centre_id, capability_id=capability_id, version=version,
        service_kind=common_pb2.SERVICE_KIND_CALIBRATION, quantity_kind="pressure",
        measurand=common_pb2.LocalizedText(zh="压力", en="pressure"),
        instrument_type=common_pb2.LocalizedText(zh="压力变送器", en="pressure transmitter"),
        method_code="JJG 882-2019", lead_time_days=5, price_cny=300, capacity_per_month=10,
        bands=[cp.RangeBand(min=0, max=10, unit="MPa", uncertainty=cp.ExpandedUncertainty(
            relative=0.0005, coverage_factor=2, coverage_probability=0.95))])
    for k, v in over.items():
        setattr(msg, k, v)
    return msg


def published(cap: cp.Capability) -> events_pb2.CapabilityPublished:
    return events_pb2.CapabilityPublished(capability=cap)


# ---- the catalog topics --------------------------------------------------------------------------------

def test_capability_signed_by_one_centre_for_another_is_refused(federation, raw):
    value, headers = sealed(federation, f"centre-{A}", topics.CAPABILITIES, f"{B}/forged-by-a",
                            published(_cap(B, "forged-by-a", 1)), producer=B)
    o1 = put(raw, topics.CAPABILITIES, f"{B}/forged-by-a", value, headers)
    value, headers = sealed(federation, f"centre-{A}", topics.CAPABILITIES, f"{B}/forged-by-a2",
                            published(_cap(B, "forged-by-a2", 1)), producer=A)  # honest producer, foreign key
    o2 = put(raw, topics.CAPABILITIES, f"{B}/forged-by-a2", value, headers)
    assert dead_lettered(federation, topics.CATALOG_GROUP, o1, o2) == {o1: "signature", o2: "unauthorised"}
    assert not {"forged-by-a", "forged-by-a2"} & caps_of(federation, B).keys()


def test_unsigned_capability_is_refused(federation, raw):
    o = put(raw, topics.CAPABILITIES, f"{B}/unsigned", unsigned(published(_cap(B, "unsigned", 1)), B))
    assert dead_lettered(federation, topics.CATALOG_GROUP, o) == {o: "signature"}
    assert "unsigned" not in caps_of(federation, B)


def test_forged_tombstones_do_not_remove_a_real_capability(federation, raw):
    target = next(iter(caps_of(federation, B)))
    o1 = put(raw, topics.CAPABILITIES, f"{B}/{target}", None,
             [(H_EVENT_ID, b"x"), (H_EVENT_TYPE, WITHDRAWN.encode())])  # unsigned
    _, headers = sealed(federation, f"centre-{A}", topics.CAPABILITIES, f"{B}/{target}", None, producer=A,
                        withdrawn=99)  # signed, but by the wrong centre
    o2 = put(raw, topics.CAPABILITIES, f"{B}/{target}", None, headers)
    assert dead_lettered(federation, topics.CATALOG_GROUP, o1, o2) == {o1: "signature", o2: "unauthorised"}
    assert target in caps_of(federation, B)


def test_forged_high_version_does_not_win_over_the_real_revisions(federation, raw):
    centre = federation.centre_as(A)
    cap = _cap(A, "attack-versioned", 0)
    centre.PublishCapability(cs.PublishCapabilityRequest(capability=cap), timeout=5)
    genuine, headers = sealed(federation, f"centre-{A}", topics.CAPABILITIES, f"{A}/attack-versioned",
                              published(_cap(A, "attack-versioned", 1)), producer=A)
    env = events_pb2.Envelope.FromString(genuine)
    env.payload = published(_cap(A, "attack-versioned", 2 ** 62, price_cny=1)).SerializeToString()
    forged = put(raw, topics.CAPABILITIES, f"{A}/attack-versioned", env.SerializeToString(), headers)  # seal broken
    revised = _cap(A, "attack-versioned", 0, lead_time_days=3)
    centre.ReviseCapability(cs.ReviseCapabilityRequest(capability=revised), timeout=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = caps_of(federation, A).get("attack-versioned")
        if got is not None and got.version == 2:
            break
        time.sleep(0.1)
    assert got.version == 2 and got.lead_time_days == 3 and got.price_cny == 300
    assert dead_lettered(federation, topics.CATALOG_GROUP, forged) == {forged: "signature"}


def test_replayed_old_versions_and_old_tombstones_change_nothing(federation, raw):
    """An attacker who recorded genuine signed records replays them later."""
    centre = federation.centre_as(A)
    centre.PublishCapability(cs.PublishCapabilityRequest(capability=_cap(A, "attack-replay", 0)), timeout=5)
    v1 = wait_for_record(federation, topics.CAPABILITIES, f"{A}/attack-replay", version=1)
    centre.WithdrawCapability(cs.WithdrawCapabilityRequest(capability_id="attack-replay"), timeout=5)
    tomb = wait_for_record(federation, topics.CAPABILITIES, f"{A}/attack-replay", tombstone=True)
    centre.PublishCapability(cs.PublishCapabilityRequest(capability=_cap(A, "attack-replay", 0)), timeout=5)
    wait_caps(federation, A, "attack-replay", version=2)
    put(raw, topics.CAPABILITIES, f"{A}/attack-replay", tomb.value, tomb.headers)  # old withdrawal: ignored
    old = put(raw, topics.CAPABILITIES, f"{A}/attack-replay", v1.value, v1.headers)  # old version
    assert dead_lettered(federation, topics.CATALOG_GROUP, old) == {old: "stale-version"}
    assert caps_of(federation, A)["attack-replay"].version == 2


def test_registration_of_an_unenrolled_centre_creates_nothing(federation, raw):
    profile = cp.CentreProfile(centre_id="evil-centre", name=common_pb2.LocalizedText(zh="假中心", en="Evil"))
    o1 = put(raw, topics.CENTRES, "evil-centre", unsigned(events_pb2.CentreRegistered(profile=profile), "evil-centre"))
    federation.home.enrol("centre-evil-signed", "centre")
    federation.home.revoke_party("centre-evil-signed")  # enrolled once, then thrown out
    profile2 = cp.CentreProfile(centre_id="evil-signed", name=common_pb2.LocalizedText(zh="假", en="Evil 2"))
    value, headers = sealed(federation, "centre-evil-signed", topics.CENTRES, "evil-signed",
                            events_pb2.CentreRegistered(profile=profile2), producer="evil-signed")
    o2 = put(raw, topics.CENTRES, "evil-signed", value, headers)
    assert dead_lettered(federation, topics.CATALOG_GROUP, o1, o2) == {o1: "signature", o2: "signature"}
    admin = KafkaAdminClient(bootstrap_servers=federation.kafka_bootstrap, **federation.admin.client_kwargs())
    try:
        names = set(admin.list_topics())
    finally:
        admin.close()
    assert topics.inbox("evil-centre") not in names and topics.inbox("evil-signed") not in names
    facets = {c.value for f in search(federation).facets if f.name == "centre" for c in f.counts}
    assert not {"evil-centre", "evil-signed"} & facets


def test_a_centre_cannot_rewrite_another_centres_profile(federation, raw):
    profile = cp.CentreProfile(centre_id=B, name=common_pb2.LocalizedText(zh="被篡改", en="Hijacked"))
    value, headers = sealed(federation, f"centre-{A}", topics.CENTRES, B,
                            events_pb2.CentreRegistered(profile=profile), producer=A)
    o = put(raw, topics.CENTRES, B, value, headers)
    assert dead_lettered(federation, topics.CATALOG_GROUP, o) == {o: "unauthorised"}
    hits = search(federation, centre_id=B).hits
    assert hits and all(h.centre_name.en != "Hijacked" for h in hits)


# ---- the status topic ----------------------------------------------------------------------------------

@pytest.fixture
def accepted(federation):
    stub = federation.gateway_as(E2E_ENTERPRISE)
    req = stub.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()), timeout=10).request
    return stub, wait_for_state(stub, req.request_id, rq.REQUEST_STATE_ACCEPTED)


def status(req, centre_id: str, state=rq.REQUEST_STATE_COMPLETED, attempt=None):
    return events_pb2.RequestStatusChanged(request_id=req.request_id, centre_id=centre_id, state=state,
                                           attempt=req.history and attempt or 1, note="forged",
                                           result_certificate="<forged/>")


@pytest.mark.parametrize("how", ["unsigned", "signed by a centre the request was never sent to",
                                 "centre_id of the assigned centre, signed by another", "tampered payload"])
def test_forged_completion_is_refused(federation, raw, accepted, how):
    stub, req = accepted
    owner = req.assigned_centre_id
    other = next(c for c in (A, B) if c != owner)
    key = req.request_id
    if how == "unsigned":
        value, headers = unsigned(status(req, owner), owner), []
    elif how == "signed by a centre the request was never sent to":
        value, headers = sealed(federation, f"centre-{other}", topics.REQUEST_STATUS, key, status(req, other),
                                producer=other)
    elif how == "centre_id of the assigned centre, signed by another":
        value, headers = sealed(federation, f"centre-{other}", topics.REQUEST_STATUS, key, status(req, owner),
                                producer=other)
    else:
        value, headers = sealed(federation, f"centre-{owner}", topics.REQUEST_STATUS, key,
                                status(req, owner, state=rq.REQUEST_STATE_ACCEPTED), producer=owner)
        env = events_pb2.Envelope.FromString(value)
        env.payload = status(req, owner).SerializeToString()
        value = env.SerializeToString()
    o = put(raw, topics.REQUEST_STATUS, key, value, headers)
    code = dead_lettered(federation, "gateway", o)[o]
    assert code == {"unsigned": "signature", "tampered payload": "signature",
                    "signed by a centre the request was never sent to": "unauthorised",
                    "centre_id of the assigned centre, signed by another": "unauthorised"}[how]
    now = stub.GetRequest(gw.GetRequestRequest(request_id=req.request_id), timeout=5).request
    assert now.state == rq.REQUEST_STATE_ACCEPTED and not now.HasField("certificate")


# ---- a centre's inbox ----------------------------------------------------------------------------------

def _routed(centre_id: str, request_id: str) -> events_pb2.RequestRouted:
    return events_pb2.RequestRouted(request_id=request_id, enterprise_id="victim", centre_id=centre_id,
                                    capability_id="x", need=pressure_need(), attempt=1, requested_by="gateway")


@pytest.mark.parametrize("how", ["unsigned", "signed by a centre", "gateway's record replayed to another inbox"])
def test_forged_work_in_a_centres_inbox_is_refused(federation, raw, how):
    rid = f"forged-{uuid.uuid4()}"
    inbox = topics.inbox(B)
    if how == "unsigned":
        value, headers = unsigned(_routed(B, rid), "gateway"), []
    elif how == "signed by a centre":
        value, headers = sealed(federation, f"centre-{A}", inbox, rid, _routed(B, rid), producer=A)
    else:  # a genuine gateway record for A's inbox, copied into B's (the signature names A's topic)
        value, headers = sealed(federation, "gateway", topics.inbox(A), rid, _routed(A, rid), producer="gateway")
    o = put(raw, inbox, rid, value, headers)
    assert dead_lettered(federation, f"centre-{B}", o)[o] in ("signature", "unauthorised")
    items = federation.centre_as(B).ListInbox(cs.ListInboxRequest(), timeout=5).items
    assert rid not in {i.request_id for i in items}


def test_an_event_signed_by_a_revoked_key_is_refused(federation, raw, accepted):
    stub, req = accepted
    owner = req.assigned_centre_id
    party = f"centre-{owner}"
    kid = federation.home.enrol(party, "centre")
    value, headers = sealed(federation, party, topics.REQUEST_STATUS, req.request_id, status(req, owner),
                            producer=owner)
    federation.home.rotate(party)  # the centre's old key …
    federation.home.revoke_key(kid)  # … turns out to be compromised
    try:
        settle(1.2)  # services re-read the trust document within a second
        o = put(raw, topics.REQUEST_STATUS, req.request_id, value, headers)
        assert dead_lettered(federation, "gateway", o) == {o: "signature"}
        now = stub.GetRequest(gw.GetRequestRequest(request_id=req.request_id), timeout=5).request
        assert now.state == rq.REQUEST_STATE_ACCEPTED
    finally:
        # the running centre still holds the revoked key in memory: give the federation its key back
        # by enrolling the revoked one as new is impossible, so restart the centre with the rotated key
        federation.stop(f"centre-{owner}")
        federation.restart(f"centre-{owner}")
        federation.wait_ready(f"centre-{owner}", timeout=60)


# ---- both gRPC APIs ------------------------------------------------------------------------------------

GATEWAY_RPCS = {
    "SearchCatalog": gw.SearchCatalogRequest(), "RouteNeed": gw.RouteNeedRequest(need=pressure_need()),
    "SubmitRequest": gw.SubmitRequestRequest(need=pressure_need()), "GetRequest": gw.GetRequestRequest(request_id="x"),
    "ListRequests": gw.ListRequestsRequest(), "CancelRequest": gw.CancelRequestRequest(request_id="x"),
}
CENTRE_RPCS = {
    "GetProfile": cs.GetProfileRequest(), "RegisterCentre": cs.RegisterCentreRequest(),
    "PublishCapability": cs.PublishCapabilityRequest(), "ReviseCapability": cs.ReviseCapabilityRequest(),
    "WithdrawCapability": cs.WithdrawCapabilityRequest(capability_id="x"),
    "ListCapabilities": cs.ListCapabilitiesRequest(), "ListInbox": cs.ListInboxRequest(),
    "AcceptRequest": cs.AcceptRequestRequest(request_id="x"),
    "DeclineRequest": cs.DeclineRequestRequest(request_id="x", reason="r"),
    "CompleteRequest": cs.CompleteRequestRequest(request_id="x"),
}


def _code(call, request) -> grpc.StatusCode:
    try:
        call(request, timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _foreign_token() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return issue_token(Ed25519PrivateKey.generate(), Role.OPERATOR, "mallory", ttl=dt.timedelta(hours=1))


@pytest.mark.parametrize("credential", ["none", "foreign issuer", "expired", "revoked", "garbage"])
def test_every_rpc_refuses_a_caller_without_a_valid_credential(federation, credential):
    from metrofed import client
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    issuer = load_pem_private_key(federation.home.issuer_key_file.read_bytes(), None)
    token = {
        "none": "", "foreign issuer": _foreign_token(), "garbage": "a.b.c",
        "expired": issue_token(issuer, Role.OPERATOR, "old", ttl=dt.timedelta(seconds=1),
                               now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)),
    }.get(credential)
    if credential == "revoked":
        token = federation.home.issue(Role.OPERATOR, "leaver")
        federation.home.revoke_subject(Role.OPERATOR, "leaver")
        settle(1.2)
    ca = federation.ca.issue("admin").ca
    gateway = client.gateway(federation.procs["gateway"].endpoint, token, ca=ca)
    centre = client.centre(federation.procs[f"centre-{A}"].endpoint, token, ca=ca)
    codes = {name: _code(getattr(gateway, name), req) for name, req in GATEWAY_RPCS.items()}
    codes |= {f"centre.{name}": _code(getattr(centre, name), req) for name, req in CENTRE_RPCS.items()}
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes


def test_roles_are_enforced_on_both_apis(federation):
    def gw_code(role, subject, rpc):
        return _code(getattr(federation.gateway_as(subject, role), rpc), GATEWAY_RPCS[rpc])

    def c_code(role, subject, rpc, centre=A):
        return _code(getattr(federation.centre_as(centre, role, subject), rpc), CENTRE_RPCS[rpc])

    denied = grpc.StatusCode.PERMISSION_DENIED
    assert gw_code(Role.REGULATOR, "js-amr", "SubmitRequest") == denied
    assert gw_code(Role.CENTRE, A, "SubmitRequest") == denied
    assert gw_code(Role.OPERATOR, "ops", "SubmitRequest") == denied  # operators act for nobody
    assert gw_code(Role.OPERATOR, "ops", "CancelRequest") == denied
    assert gw_code(Role.REGULATOR, "js-amr", "GetRequest") == denied
    assert gw_code(Role.REGULATOR, "js-amr", "SearchCatalog") == grpc.StatusCode.OK
    for rpc in ("RegisterCentre", "PublishCapability", "ListInbox", "AcceptRequest", "CompleteRequest"):
        assert c_code(Role.ENTERPRISE, "acme", rpc) == denied, rpc
        assert c_code(Role.REGULATOR, "js-amr", rpc) == denied, rpc
    assert c_code(Role.CENTRE, A, "RegisterCentre") == denied  # only operators register centres
    for rpc in ("PublishCapability", "WithdrawCapability", "AcceptRequest", "DeclineRequest", "CompleteRequest"):
        assert c_code(Role.OPERATOR, "ops", rpc) == denied, rpc  # nor do they speak for a centre
    assert c_code(Role.OPERATOR, "ops", "ListInbox") == grpc.StatusCode.OK


def test_cross_tenant_access_is_denied_for_every_rpc_that_takes_an_id(federation, accepted):
    stub, req = accepted  # E2E_ENTERPRISE's request, at its centre
    other = federation.gateway_as("someone-else")
    nf, denied = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED
    attempts = {
        "GetRequest": (_code(other.GetRequest, gw.GetRequestRequest(request_id=req.request_id)), nf),
        "CancelRequest": (_code(other.CancelRequest, gw.CancelRequestRequest(request_id=req.request_id)), nf),
        "ListRequests(other enterprise)": (_code(other.ListRequests,
                                                 gw.ListRequestsRequest(enterprise_id=E2E_ENTERPRISE)), denied),
        "SubmitRequest(other enterprise)": (_code(other.SubmitRequest, gw.SubmitRequestRequest(
            enterprise_id=E2E_ENTERPRISE, need=pressure_need())), denied),
    }
    owner = req.assigned_centre_id
    intruder = next(c for c in (A, B) if c != owner)
    as_intruder = federation.centre_as(owner, Role.CENTRE, intruder)  # centre staff of another centre
    for rpc, msg in (("AcceptRequest", cs.AcceptRequestRequest(request_id=req.request_id)),
                     ("DeclineRequest", cs.DeclineRequestRequest(request_id=req.request_id, reason="mine now")),
                     ("CompleteRequest", cs.CompleteRequestRequest(request_id=req.request_id)),
                     ("ListInbox", cs.ListInboxRequest()), ("ListCapabilities", cs.ListCapabilitiesRequest()),
                     ("WithdrawCapability", cs.WithdrawCapabilityRequest(capability_id="x")),
                     ("PublishCapability", cs.PublishCapabilityRequest())):
        attempts[f"centre.{rpc}"] = (_code(getattr(as_intruder, rpc), msg), denied)
    wrong = {k: v for k, v in attempts.items() if v[0] != v[1]}
    assert not wrong, wrong
    # the other enterprise's own list does not show the request either
    mine = other.ListRequests(gw.ListRequestsRequest(), timeout=5).requests
    assert req.request_id not in {r.request_id for r in mine}
    # and the owner still sees it, untouched
    assert stub.GetRequest(gw.GetRequestRequest(request_id=req.request_id), timeout=5).request.state == \
        rq.REQUEST_STATE_ACCEPTED


# ---- helpers reading what reached the broker -----------------------------------------------------------

def wait_for_record(federation, topic: str, key: str, *, version: int | None = None, tombstone: bool = False,
                    timeout: float = 10.0):
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=federation.kafka_bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=500, **federation.admin.client_kwargs())
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                for r in records:
                    if r.key != key.encode():
                        continue
                    if tombstone and r.value is None:
                        return r
                    if version is not None and r.value is not None:
                        env = events_pb2.Envelope.FromString(r.value)
                        if events_pb2.CapabilityPublished.FromString(env.payload).capability.version == version:
                            return r
        raise AssertionError(f"no record {key} ({'tombstone' if tombstone else version}) on {topic}")
    finally:
        consumer.close()


def wait_caps(federation, centre_id: str, capability_id: str, version: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = caps_of(federation, centre_id).get(capability_id)
        if got is not None and got.version == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"{centre_id}/{capability_id} never reached version {version}")
