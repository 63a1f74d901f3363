"""Nothing a centre says is held back by one oversized thing (issue 9.2), through the real federation:
a 1.5 MB certificate completes the request and travels by reference, the enterprise fetches it from the
centre and checks its digest, and the centre's next event still reaches the gateway; a capability too big
for one event is refused at the API with nothing written."""

from __future__ import annotations

import hashlib
import time
import uuid

import grpc
import pytest

from metrofed import client
from metrofed.v1 import capability_pb2 as cp
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import common_pb2
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from metrofed.domain.access import Role
from tests.e2e.conftest import E2E_ENTERPRISE, pressure_need, wait_for_state

pytestmark = pytest.mark.e2e


def capability(capability_id: str, bands: int = 1) -> cp.Capability:
    unc = cp.ExpandedUncertainty(relative=0.0005, coverage_factor=2, coverage_probability=0.95)
    return cp.Capability(
        capability_id=capability_id, service_kind=common_pb2.SERVICE_KIND_CALIBRATION, quantity_kind="pressure",
        measurand=common_pb2.LocalizedText(zh="压力", en="pressure"),
        instrument_type=common_pb2.LocalizedText(zh="压力表", en="pressure gauge"), method_code="JJG 52-2013",
        lead_time_days=4, price_cny=200, capacity_per_month=10,
        bands=[cp.RangeBand(min=i, max=i + 1, unit="kPa", uncertainty=unc) for i in range(bands)])


def dcc(request_id: str, size: int) -> str:
    head = f'<dcc:digitalCalibrationCertificate><dcc:uniqueIdentifier>{request_id}</dcc:uniqueIdentifier>'
    tail = "</dcc:digitalCalibrationCertificate>"
    filler = "<dcc:result>1.000</dcc:result>"
    return head + filler * ((size - len(head) - len(tail)) // len(filler)) + tail


def in_catalog(gateway, centre_id: str, capability_id: str) -> bool:
    hits = gateway.SearchCatalog(gw.SearchCatalogRequest(centre_id=centre_id, limit=200), timeout=5).hits
    return capability_id in {h.capability.capability_id for h in hits}


def test_a_large_certificate_completes_by_reference_and_the_centre_is_not_held_back(federation, gateway):
    req = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                timeout=10).request
    wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_ACCEPTED)
    centre_id = req.assigned_centre_id
    centre = federation.centre_as(centre_id)
    document = dcc(req.request_id, 1_500_000)
    assert len(document.encode()) > 1_400_000  # bigger than the broker's 1 MB record limit

    item = centre.CompleteRequest(cs.CompleteRequestRequest(request_id=req.request_id, result_certificate=document),
                                  timeout=10).item
    assert item.state == rq.REQUEST_STATE_COMPLETED
    done = wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_COMPLETED)
    ref = done.certificate
    assert (ref.centre_id, ref.size_bytes, ref.media_type) == (centre_id, len(document.encode()), "application/xml")
    assert ref.sha256 == hashlib.sha256(document.encode()).hexdigest()
    assert done.result_certificate == ""

    # the enterprise fetches it from the centre with its own credential; nobody else can
    as_owner = federation.centre_as(centre_id, Role.ENTERPRISE, E2E_ENTERPRISE)
    fetched = client.fetch_certificate(as_owner, req.request_id, ref)
    assert fetched == document.encode()
    tampered = rq.CertificateRef()
    tampered.CopyFrom(ref)
    tampered.sha256 = hashlib.sha256(b"another document").hexdigest()
    with pytest.raises(client.CertificateMismatch):
        client.fetch_certificate(as_owner, req.request_id, tampered)
    as_other = federation.centre_as(centre_id, Role.ENTERPRISE, "someone-else")
    with pytest.raises(grpc.RpcError) as err:
        as_other.GetCertificate(cs.GetCertificateRequest(request_id=req.request_id), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    # The same centre's next event goes out: a capability published now reaches the gateway's catalog.
    cap_id = f"e2e-after-cert-{uuid.uuid4().hex[:8]}"
    centre.PublishCapability(cs.PublishCapabilityRequest(capability=capability(cap_id)), timeout=5)
    deadline = time.monotonic() + 15
    while not in_catalog(gateway, centre_id, cap_id):
        assert time.monotonic() < deadline, "the capability published after the certificate never arrived"
        time.sleep(0.1)


def test_a_certificate_over_two_mebibytes_is_refused_naming_the_field(federation, gateway):
    req = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                timeout=10).request
    wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_ACCEPTED)
    centre = federation.centre_as(req.assigned_centre_id)
    with pytest.raises(grpc.RpcError) as err:
        centre.CompleteRequest(cs.CompleteRequestRequest(request_id=req.request_id,
                                                         result_certificate=dcc(req.request_id, 2_200_000)),
                               timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("result_certificate"), err.value.details()
    items = {i.request_id: i for i in centre.ListInbox(cs.ListInboxRequest(), timeout=5).items}
    assert items[req.request_id].state == rq.REQUEST_STATE_ACCEPTED
    with pytest.raises(grpc.RpcError) as missing:
        centre.GetCertificate(cs.GetCertificateRequest(request_id=req.request_id), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_capability_too_big_for_an_event_is_refused_and_nothing_is_written(federation, gateway):
    centre = federation.centre_as("sh-marine-power")
    cap_id = f"e2e-30k-bands-{uuid.uuid4().hex[:8]}"
    with pytest.raises(grpc.RpcError) as err:
        centre.PublishCapability(cs.PublishCapabilityRequest(capability=capability(cap_id, bands=30_000)),
                                 timeout=20)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("capability.bands"), err.value.details()
    listed = {c.capability_id for c in centre.ListCapabilities(cs.ListCapabilitiesRequest(), timeout=5).capabilities}
    assert cap_id not in listed
    # and the centre still publishes: a normal capability right after reaches the catalog
    ok_id = f"e2e-after-30k-{uuid.uuid4().hex[:8]}"
    centre.PublishCapability(cs.PublishCapabilityRequest(capability=capability(ok_id)), timeout=5)
    deadline = time.monotonic() + 15
    while not in_catalog(gateway, "sh-marine-power", ok_id):
        assert time.monotonic() < deadline, "the next capability never reached the gateway's catalog"
        time.sleep(0.1)
