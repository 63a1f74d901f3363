"""A small real federation for end-to-end tests: real Kafka, real Zipkin, centre and gateway processes
started exactly as `make run` starts them (infra/federation.py)."""

from __future__ import annotations

import time

import grpc
import pytest

from infra.federation import SEED_DIR, Federation
from metrofed.domain.access import Role
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq

# Centres whose seed data gives overlapping pressure, torque and charger capabilities (several cities).
E2E_ENTERPRISE = "e2e-enterprise"
E2E_CENTRES = ("hz-oil-gas", "cz-rail", "hf-nev-energy", "sh-h2-storage", "sh-marine-power")


@pytest.fixture(scope="session")
def federation(kafka, zipkin, tmp_path_factory):
    fed = Federation(kafka.bootstrap, tmp_path_factory.mktemp("federation"), kafka.ca,
                     zipkin_endpoint=zipkin.spans_endpoint,
                     extra_env={"METROFED_SILENCE_SECONDS": "3600"})
    try:
        for centre in E2E_CENTRES:
            fed.start_centre(SEED_DIR / f"{centre}.yaml")
        fed.wait_ready(*[f"centre-{c}" for c in E2E_CENTRES], timeout=120)
        fed.start_gateway()
        fed.wait_ready("gateway", timeout=120)
        wait_for_catalog(fed.gateway_as("e2e", Role.OPERATOR), len(E2E_CENTRES))
        yield fed
    finally:
        fed.stop()


def wait_for_catalog(stub, centres: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            res = stub.SearchCatalog(gw.SearchCatalogRequest(limit=1), timeout=5)
            seen = {c.value for f in res.facets if f.name == "centre" for c in f.counts}
            if len(seen) >= centres:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"catalog did not list {centres} centres within {timeout}s")


@pytest.fixture
def gateway(federation):
    """The gateway as the e2e tests' default enterprise (tests that act for others use gateway_as)."""
    return federation.gateway_as(E2E_ENTERPRISE)


def wait_for_state(stub, request_id: str, wanted: int, timeout: float = 30.0) -> rq.ServiceRequest:
    deadline = time.monotonic() + timeout
    while True:
        req = stub.GetRequest(gw.GetRequestRequest(request_id=request_id), timeout=5).request
        if req.state == wanted:
            return req
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} is {rq.RequestState.Name(req.state)}, "
                                 f"wanted {rq.RequestState.Name(wanted)}; history: "
                                 f"{[(rq.RequestState.Name(h.state), h.note) for h in req.history]}")
        time.sleep(0.1)


def pressure_need(max_mpa: float = 25, percent: float = 0.1, city: str = "无锡") -> rq.Need:
    return rq.Need(instrument_type="pressure transmitter", range=rq.MeasuringRange(min=0, max=max_mpa, unit="MPa"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=percent),
                   city=city, province="江苏")


def sign_as(federation, party: str, topic: str, key: str | None, value: bytes | None) -> tuple[bytes | None, list]:
    """``value`` signed with ``party``'s real key, as that party's outbox relay would sign it (the envelope's
    producer set to that party): for tests that write records a real but buggy producer could send.
    Bytes that are not an envelope are returned as they are (nothing to sign)."""
    import uuid as _uuid

    from google.protobuf.message import DecodeError

    from metrofed.bus.envelope import WITHDRAWN
    from metrofed.bus.signed import H_EVENT_ID, H_EVENT_TYPE, seal_batch
    from metrofed.trust.signing import Signer
    from metrofed.v1 import events_pb2

    if not federation.home.store().is_enrolled(party):
        federation.home.enrol(party, "gateway" if party == "gateway" else "centre")
        time.sleep(1.2)  # running services re-read the trust document at most once a second
    signer = Signer.from_file(party, federation.home.signing_key_file(party))
    producer = party.removeprefix("centre-")
    if value is None:
        event_id = str(_uuid.uuid4())
        ((_, headers),) = seal_batch(signer, [(topic, key, None, event_id, WITHDRAWN, 0, None)])
        return None, [(H_EVENT_ID, event_id.encode()), (H_EVENT_TYPE, WITHDRAWN.encode()), *headers]
    try:
        env = events_pb2.Envelope.FromString(value)
    except DecodeError:
        return value, []
    if not env.event_type:
        return value, []
    env.producer_centre_id = producer
    ((sealed, headers),) = seal_batch(signer, [(topic, key, env.SerializeToString(), env.event_id, env.event_type,
                                                0, None)])
    return sealed, headers
