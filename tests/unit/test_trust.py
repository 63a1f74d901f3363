"""The trust model's pieces without servers: credentials, seals, the trust document, the access rules."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from metrofed.bus.failures import PermanentFailure
from metrofed.bus.signed import envelope_leaf, envelope_seal, seal_batch, verify_envelope
from metrofed.bus.envelope import wrap
from metrofed.domain.access import Forbidden, Principal, Role, acting_enterprise, owns_request
from metrofed.trust.credentials import BadCredential, TokenVerifier, issue_token
from metrofed.trust.home import FederationHome
from metrofed.trust.policy import CENTRE, GATEWAY, POLICY
from metrofed.trust.signing import Signer, Verifier, leaf, merkle_seals, root_from_path
from metrofed.v1 import centre_service_pb2, events_pb2, gateway_service_pb2

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def home(tmp_path):
    h = FederationHome(tmp_path / "home")
    h.init()
    return h


@pytest.fixture
def store(home):
    return home.store()


# ---- credentials ---------------------------------------------------------------------------------------

def test_an_issued_credential_names_role_and_subject(home, store):
    token = home.issue(Role.ENTERPRISE, "acme")
    p = TokenVerifier(store).verify(token)
    assert (p.role, p.subject) == (Role.ENTERPRISE, "acme") and p.token_id


def _forged(claims: dict, key=None, alg="EdDSA") -> str:
    base = {"iss": "metrofed", "aud": "metrofed", "sub": "acme", "role": "enterprise", "jti": "j1",
            "iat": int(NOW.timestamp()), "exp": int((NOW + dt.timedelta(days=1)).timestamp())}
    base.update(claims)
    return jwt.encode(base, key or Ed25519PrivateKey.generate(), algorithm=alg)


@pytest.mark.parametrize("case", ["other issuer key", "expired", "alg none", "hmac with the public key",
                                  "tampered payload", "unknown role", "wrong audience", "no jti", "garbage",
                                  "empty", "huge"])
def test_bad_credentials_are_refused(home, store, case):
    verifier = TokenVerifier(store)
    issuer = home.issuer_key_file
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    key = load_pem_private_key(issuer.read_bytes(), None)
    good = issue_token(key, Role.ENTERPRISE, "acme", ttl=dt.timedelta(days=1), now=NOW)
    token = {
        "other issuer key": _forged({}),
        "expired": issue_token(key, Role.ENTERPRISE, "acme", ttl=dt.timedelta(seconds=1),
                               now=NOW - dt.timedelta(hours=1)),
        "alg none": jwt.encode({"sub": "acme", "role": "operator"}, None, algorithm="none"),
        "hmac with the public key": jwt.encode(
            {"iss": "metrofed", "aud": "metrofed", "sub": "x", "role": "operator", "jti": "j", "iat": 1,
             "exp": 4102444800}, base64.b64decode(json.loads(home.trust_file.read_text())["issuer"]["public"]),
            algorithm="HS256"),
        "tampered payload": good.split(".")[0] + "." + base64.urlsafe_b64encode(
            json.dumps({"sub": "other", "role": "operator"}).encode()).decode().rstrip("=") + "." + good.split(".")[2],
        "unknown role": _forged({"role": "root"}, key),
        "wrong audience": _forged({"aud": "elsewhere"}, key),
        "no jti": jwt.encode({k: v for k, v in {"iss": "metrofed", "aud": "metrofed", "sub": "a", "role": "operator",
                                                 "iat": 1, "exp": 4102444800}.items()}, key, algorithm="EdDSA"),
        "garbage": "not.a.jwt",
        "empty": "",
        "huge": "x" * 10_000,
    }[case]
    with pytest.raises(BadCredential):
        verifier.verify(token, now=NOW)
    assert verifier.verify(good, now=NOW).subject == "acme"  # the verifier itself works


def test_revoking_a_token_or_a_subject_takes_effect_without_a_restart(home, store):
    verifier = TokenVerifier(store)
    t1, t2 = home.issue(Role.ENTERPRISE, "acme"), home.issue(Role.OPERATOR, "alice")
    p1 = verifier.verify(t1)
    verifier.verify(t2)
    home.revoke_token(p1.token_id)
    home.revoke_subject(Role.OPERATOR, "alice")
    store.refresh(force=True)
    for t in (t1, t2):
        with pytest.raises(BadCredential, match="revoked"):
            verifier.verify(t)
    assert verifier.verify(home.issue(Role.OPERATOR, "alice")).subject == "alice"  # a new one works at once


# ---- seals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100])
def test_every_leaf_of_a_batch_leads_to_the_root(n):
    leaves = [leaf("t", str(i).encode(), f"e{i}", "T", "c", i, 1, b"x" * i) for i in range(n)]
    root, paths = merkle_seals(leaves)
    for i, lf in enumerate(leaves):
        assert root_from_path(lf, i, n, tuple(paths[i])) == root
        if n > 1:
            assert root_from_path(leaves[(i + 1) % n], i, n, tuple(paths[i])) != root


def _signed(home, store, party="centre-a", n=3):
    home.enrol(party, "centre")
    signer = Signer.from_file(party, home.signing_key_file(party))
    events = [wrap(events_pb2.RequestStatusChanged(request_id=f"r{i}", centre_id="a"), "a") for i in range(n)]
    sealed = seal_batch(signer, [("metrofed.request-status.v1", f"r{i}", e.SerializeToString(), e.event_id,
                                  e.event_type, 0, None) for i, e in enumerate(events)])
    return [events_pb2.Envelope.FromString(v) for v, _ in sealed]


def test_a_sealed_batch_verifies_record_by_record_with_one_signature_check(home, store):
    envs = _signed(home, store)
    verifier = Verifier(store)
    for i, env in enumerate(envs):
        assert verify_envelope(verifier, "metrofed.request-status.v1", f"r{i}", env) == "a"
    assert len(verifier._roots) == 1


@pytest.mark.parametrize("attack", ["other key", "other topic", "other producer", "changed payload", "unsigned",
                                    "unknown key", "revoked key", "truncated path", "other index"])
def test_seals_refuse_tampering(home, store, attack):
    env = _signed(home, store)[1]
    topic, key = "metrofed.request-status.v1", "r1"
    if attack == "other key":
        key = "r2"
    elif attack == "other topic":
        topic = "metrofed.inbox.a.v1"
    elif attack == "other producer":
        home.enrol("centre-b", "centre")
        env.producer_centre_id = "b"
    elif attack == "changed payload":
        env.payload = events_pb2.RequestStatusChanged(request_id="r1", centre_id="a", state=7).SerializeToString()
    elif attack == "unsigned":
        env.ClearField("signature")
    elif attack == "unknown key":
        env.signing_key_id = "0123456789abcdef"
    elif attack == "revoked key":
        home.revoke_key(env.signing_key_id)
        store.refresh(force=True)
    elif attack == "truncated path":
        del env.seal_path[-1]
    elif attack == "other index":
        env.seal_index = 0
    with pytest.raises(PermanentFailure) as err:
        verify_envelope(Verifier(store), topic, key, env)
    assert err.value.code == "signature"


def test_a_retired_key_still_verifies_what_it_signed(home, store):
    env = _signed(home, store)[0]
    home.rotate("centre-a")
    store.refresh(force=True)
    assert store.key(env.signing_key_id).status == "retired"
    assert verify_envelope(Verifier(store), "metrofed.request-status.v1", "r0", env) == "a"


def test_a_key_registered_for_one_party_cannot_speak_for_another(home, store):
    env = _signed(home, store, party="centre-a")[0]
    env.producer_centre_id = "gateway"  # centre a's key claims to be the gateway
    with pytest.raises(PermanentFailure, match="centre-a's key"):
        verify_envelope(Verifier(store), "metrofed.request-status.v1", "r0", env)


# ---- policy and tenant rules ---------------------------------------------------------------------------

def test_every_rpc_of_both_services_has_an_access_policy():
    methods = {GATEWAY + m.name for m in gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].methods}
    methods |= {CENTRE + m.name for m in centre_service_pb2.DESCRIPTOR.services_by_name["CentreService"].methods}
    assert methods - POLICY.keys() == set()


def test_only_operators_register_centres_and_only_enterprises_submit():
    assert POLICY[CENTRE + "RegisterCentre"] == {Role.OPERATOR}
    assert POLICY[GATEWAY + "SubmitRequest"] == {Role.ENTERPRISE}


def test_tenant_rules():
    acme, other = Principal(Role.ENTERPRISE, "acme"), Principal(Role.ENTERPRISE, "other")
    op = Principal(Role.OPERATOR, "alice")
    assert owns_request(acme, "acme") and not owns_request(other, "acme") and owns_request(op, "acme")
    assert not owns_request(Principal(Role.CENTRE, "acme"), "acme")
    assert acting_enterprise(acme, "") == acting_enterprise(acme, "acme") == "acme"
    with pytest.raises(Forbidden, match="enterprise_id"):
        acting_enterprise(acme, "other")
    with pytest.raises(Forbidden):
        acting_enterprise(op, "acme")


def test_the_trust_document_is_reread_when_it_changes(home, store):
    before = store.generation
    time.sleep(0.01)
    home.enrol("centre-z", "centre")
    store.refresh(force=True)
    assert store.generation > before and store.is_enrolled("centre-z")


def test_docs_security_shows_the_policy_the_code_enforces():
    from pathlib import Path

    from metrofed.trust.policy import markdown_table
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert markdown_table() in doc, "docs/security.md's RPC table differs from metrofed/trust/policy.py"
