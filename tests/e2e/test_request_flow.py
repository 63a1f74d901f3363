"""One enterprise request through the real federation: gateway → Kafka → centre → Kafka → gateway."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import pytest

from infra.federation import Federation
from metrofed import client
from metrofed.domain.access import Role
from metrofed.v1 import centre_service_pb2 as cs
from metrofed.v1 import gateway_service_pb2 as gw
from metrofed.v1 import request_pb2 as rq
from tests.e2e.conftest import E2E_ENTERPRISE, pressure_need, wait_for_catalog, wait_for_state

pytestmark = pytest.mark.e2e


def zipkin_trace(zipkin, trace_id: str, want_services: set[str], timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    spans: list[dict] = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{zipkin.url}/api/v2/trace/{trace_id}", timeout=5) as resp:
                spans = json.loads(resp.read())
        except OSError:
            spans = []
        # Every process exports on its own schedule: wait until each service's CONSUMER span is in.
        consumers = {s.get("localEndpoint", {}).get("serviceName") for s in spans if s.get("kind") == "CONSUMER"}
        kinds = {s.get("kind") for s in spans}
        if want_services <= consumers and {"SERVER", "PRODUCER"} <= kinds:
            return spans
        time.sleep(0.5)
    raise AssertionError(f"trace {trace_id} incomplete after {timeout}s: "
                         f"{sorted((s.get('localEndpoint', {}).get('serviceName'), s.get('kind'), s.get('name')) for s in spans)}")


def test_request_is_accepted_and_is_one_trace_across_gateway_bus_and_centre(gateway, zipkin):
    sub = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()), timeout=10)
    req = sub.request
    assert req.state == rq.REQUEST_STATE_ROUTED, req
    centre = req.assigned_centre_id
    assert centre and req.routing.candidates[0].centre_id == centre
    assert "TUR" in req.routing.candidates[0].explanation
    done = wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_ACCEPTED)
    assert [rq.RequestState.Name(h.state) for h in done.history][-1] == "REQUEST_STATE_ACCEPTED"

    gateway_svc, centre_svc = "metrofed-gateway", f"metrofed-centre-{centre}"
    spans = zipkin_trace(zipkin, req.trace_id, {gateway_svc, centre_svc})
    assert {s["traceId"] for s in spans} == {req.trace_id}
    by_id = {s["id"]: s for s in spans}

    def svc(s):
        return s["localEndpoint"]["serviceName"]

    server = [s for s in spans if svc(s) == gateway_svc and s.get("kind") == "SERVER"]
    assert server and server[0]["tags"].get("rpc.system") == "grpc"
    assert server[0]["tags"].get("metrofed.request_id") == req.request_id
    centre_consume = [s for s in spans if svc(s) == centre_svc and s.get("kind") == "CONSUMER"]
    assert centre_consume, "the centre's inbox consumer span is missing"
    parent = by_id.get(centre_consume[0].get("parentId"))
    assert parent is not None and parent.get("kind") == "PRODUCER" and svc(parent) == gateway_svc
    assert centre_consume[0]["tags"]["messaging.system"] == "kafka"
    assert centre_consume[0]["tags"]["messaging.destination.name"] == f"metrofed.inbox.{centre}.v1"
    gateway_consume = [s for s in spans if svc(s) == gateway_svc and s.get("kind") == "CONSUMER"]
    assert gateway_consume, "the gateway's status consumer span is missing"
    assert gateway_consume[0]["tags"].get("metrofed.centre_id") == centre
    status_producer = by_id.get(gateway_consume[0].get("parentId"))
    assert status_producer is not None and svc(status_producer) == centre_svc
    assert any(svc(s) == centre_svc and "tags" in s and s["tags"].get("db.system") for s in spans), \
        "no SQLAlchemy span from the centre"


BAD_NEEDS = [
    ("need.measurand", dict(instrument_type="", measurand="")),
    ("need.range.unit", dict(range=rq.MeasuringRange(min=0, max=25, unit="megapascalz"))),
    ("need.range.max", dict(range=rq.MeasuringRange(min=30, max=25, unit="MPa"))),
    ("need.measurand", dict(measurand="x" * 1_000_000)),
    ("need.quantity", dict(quantity=-3)),
    ("need.tolerance.value", dict(tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=0))),
    ("need.range.unit", dict(range=rq.MeasuringRange(min=0, max=25, unit="N*m"),
                             instrument_type="pressure transmitter", quantity_kind="pressure")),
]


@pytest.mark.parametrize("field,change", BAD_NEEDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_NEEDS)])
def test_bad_input_is_invalid_argument_naming_the_field_and_changes_nothing(federation, field, change):
    need = pressure_need()
    for k, v in change.items():
        if isinstance(v, (rq.MeasuringRange, rq.Tolerance)):
            getattr(need, k).CopyFrom(v)
        else:
            setattr(need, k, v)
    enterprise = f"e2e-bad-{field}"
    gateway = federation.gateway_as(enterprise)
    before = gateway.ListRequests(gw.ListRequestsRequest(enterprise_id=enterprise), timeout=5).requests
    with pytest.raises(grpc.RpcError) as err:
        gateway.SubmitRequest(gw.SubmitRequestRequest(enterprise_id=enterprise, need=need), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()
    after = gateway.ListRequests(gw.ListRequestsRequest(enterprise_id=enterprise), timeout=5).requests
    assert len(after) == len(before)
    # The gateway still serves good requests afterwards.
    ok = gateway.RouteNeed(gw.RouteNeedRequest(need=pressure_need()), timeout=10)
    assert ok.decision.candidates
    # the rejected centres with their reasons: none that has a candidate, counts that add up
    d = ok.decision
    assert sum(d.rejected_by_reason.values()) == d.rejected_total
    assert {c.centre_id for c in d.candidates}.isdisjoint({r.centre_id for r in d.rejected_centres})
    assert all(r.rejected == sum(r.by_reason.values()) > 0 for r in d.rejected_centres)


def test_withdrawn_capability_leaves_search_and_routing_within_a_second(federation, gateway):
    need = rq.Need(instrument_type="torque wrench", range=rq.MeasuringRange(min=20, max=200, unit="N·m"),
                   tolerance=rq.Tolerance(kind=rq.TOLERANCE_KIND_PERCENT_OF_READING, value=4), city="常州")
    before = gateway.RouteNeed(gw.RouteNeedRequest(need=need), timeout=10).decision
    target = next(c for c in before.candidates if c.centre_id == "cz-rail")
    hits = gateway.SearchCatalog(gw.SearchCatalogRequest(text="torque wrench", centre_id="cz-rail"), timeout=5).hits
    assert target.capability_id in {h.capability.capability_id for h in hits}

    centre = federation.centre_as("cz-rail")
    t0 = time.monotonic()
    centre.WithdrawCapability(cs.WithdrawCapabilityRequest(capability_id=target.capability_id,
                                                           reason="torque wrench tester out for repair"), timeout=5)
    gone_at = None
    while time.monotonic() - t0 < 10:
        hits = gateway.SearchCatalog(gw.SearchCatalogRequest(text="torque wrench", centre_id="cz-rail"), timeout=5).hits
        routed = gateway.RouteNeed(gw.RouteNeedRequest(need=need), timeout=10).decision
        if target.capability_id not in {h.capability.capability_id for h in hits} and \
                (target.centre_id, target.capability_id) not in {(c.centre_id, c.capability_id) for c in routed.candidates}:
            gone_at = time.monotonic() - t0
            break
        time.sleep(0.02)
    print(f"withdrawal visible at the gateway after {gone_at}s")
    assert gone_at is not None and gone_at < 1.0, f"withdrawal took {gone_at}s to reach the gateway"
    listed = centre.ListCapabilities(cs.ListCapabilitiesRequest(), timeout=5).capabilities
    assert target.capability_id not in {c.capability_id for c in listed}


def test_gateway_started_from_an_empty_database_rebuilds_the_same_catalog(federation: Federation, gateway):
    first = gateway.SearchCatalog(gw.SearchCatalogRequest(limit=200), timeout=10)
    fed = federation
    fed.start_gateway(name="gateway-fresh")
    try:
        fed.wait_ready("gateway-fresh", timeout=60)
        fresh = fed.gateway_as("e2e-enterprise", name="gateway-fresh")
        wait_for_catalog(fresh, 1)
        second = fresh.SearchCatalog(gw.SearchCatalogRequest(limit=200), timeout=10)

        def view(res):
            return sorted((h.capability.centre_id, h.capability.capability_id, h.capability.version) for h in res.hits)

        assert first.total == second.total > 0
        assert view(first) == view(second)
    finally:
        fed.stop("gateway-fresh")


def _capability(**band_unc) -> "cp.Capability":
    from metrofed.v1 import capability_pb2 as cp
    from metrofed.v1 import common_pb2

    unc = dict(relative=0.0005, absolute=0.0, absolute_unit="", coverage_factor=2, coverage_probability=0.95)
    unc.update(band_unc)
    return cp.Capability(
        capability_id="e2e-transmitter-cal", service_kind=common_pb2.SERVICE_KIND_CALIBRATION,
        quantity_kind="pressure", measurand=common_pb2.LocalizedText(zh="压力", en="pressure"),
        instrument_type=common_pb2.LocalizedText(zh="压力变送器", en="pressure transmitter"),
        method_code="JJG 882-2019", lead_time_days=5, price_cny=300, capacity_per_month=10,
        bands=[cp.RangeBand(min=0, max=10, unit="MPa", uncertainty=cp.ExpandedUncertainty(**unc))])


BAD_CAPABILITIES = [
    ("capability.bands[0].uncertainty.relative", dict(relative=-0.001)),
    ("capability.bands[0].uncertainty.absolute", dict(relative=0, absolute=2, absolute_unit="N*m")),
    ("capability.bands[0].uncertainty.absolute", dict(relative=0, absolute=2, absolute_unit="pascalz")),
]


@pytest.mark.parametrize("field,unc", BAD_CAPABILITIES, ids=[f for f, _ in BAD_CAPABILITIES])
def test_centre_rejects_a_bad_capability_naming_the_field_and_publishes_nothing(federation, gateway, field, unc):
    centre = federation.centre_as("sh-marine-power")
    before = {c.capability_id for c in centre.ListCapabilities(cs.ListCapabilitiesRequest(), timeout=5).capabilities}
    with pytest.raises(grpc.RpcError) as err:
        centre.PublishCapability(cs.PublishCapabilityRequest(capability=_capability(**unc)), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(field), err.value.details()
    after = {c.capability_id for c in centre.ListCapabilities(cs.ListCapabilitiesRequest(), timeout=5).capabilities}
    assert after == before


def test_capability_published_at_a_centre_becomes_searchable_and_routable(federation, gateway):
    centre = federation.centre_as("sh-marine-power")
    published = centre.PublishCapability(cs.PublishCapabilityRequest(capability=_capability()), timeout=5).capability
    assert published.version == 1 and published.centre_id == "sh-marine-power"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = gateway.SearchCatalog(gw.SearchCatalogRequest(centre_id="sh-marine-power", text="压力变送器"),
                                     timeout=5).hits
        if "e2e-transmitter-cal" in {h.capability.capability_id for h in hits}:
            fresh = hits[0].centre_freshness.ToMilliseconds() / 1000
            assert abs(time.time() - fresh) < 60, "the centre's freshness stamp is not recent"
            break
        time.sleep(0.05)
    else:
        raise AssertionError("published capability never reached the gateway's catalog")
    revised = _capability(relative=0.0002)
    revised.lead_time_days = 2
    out = centre.ReviseCapability(cs.ReviseCapabilityRequest(capability=revised), timeout=5).capability
    assert out.version == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        hits = gateway.SearchCatalog(gw.SearchCatalogRequest(centre_id="sh-marine-power", text="压力变送器"),
                                     timeout=5).hits
        got = {h.capability.capability_id: h.capability for h in hits}.get("e2e-transmitter-cal")
        if got is not None and got.version == 2:
            assert got.lead_time_days == 2
            break
        time.sleep(0.05)
    else:
        raise AssertionError("revision never replaced version 1 at the gateway")


def test_completion_at_the_centre_brings_the_certificate_to_the_enterprise(federation, gateway):
    req = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                timeout=10).request
    wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_ACCEPTED)
    centre = federation.centre_as(req.assigned_centre_id)
    item = centre.CompleteRequest(cs.CompleteRequestRequest(request_id=req.request_id, note="calibrated, 5 points"),
                                  timeout=5).item
    assert item.state == rq.REQUEST_STATE_COMPLETED
    done = wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_COMPLETED)
    assert done.result_certificate == ""  # by reference (claim check), fetched from the centre by digest
    assert done.certificate.centre_id == req.assigned_centre_id and len(done.certificate.sha256) == 64
    owner = federation.centre_as(req.assigned_centre_id, Role.ENTERPRISE, E2E_ENTERPRISE)
    document = client.fetch_certificate(owner, req.request_id, done.certificate).decode()
    assert "digitalCalibrationCertificate" in document
    assert req.request_id in document  # the certificate's unique identifier names the request
    with pytest.raises(grpc.RpcError) as err:  # a completed request cannot be cancelled
        gateway.CancelRequest(gw.CancelRequestRequest(request_id=req.request_id), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_cancelling_at_the_gateway_withdraws_the_request_from_the_centre(federation, gateway):
    req = gateway.SubmitRequest(gw.SubmitRequestRequest(need=pressure_need()),
                                timeout=10).request
    wait_for_state(gateway, req.request_id, rq.REQUEST_STATE_ACCEPTED)
    out = gateway.CancelRequest(gw.CancelRequestRequest(request_id=req.request_id, reason="instrument scrapped"),
                                timeout=5).request
    assert out.state == rq.REQUEST_STATE_CANCELLED
    centre = federation.centre_as(req.assigned_centre_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = {i.request_id: i for i in centre.ListInbox(cs.ListInboxRequest(), timeout=5).items}
        if items[req.request_id].state == rq.REQUEST_STATE_CANCELLED:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the centre never saw the cancellation")
    with pytest.raises(grpc.RpcError) as err:  # and cannot complete it any more
        centre.CompleteRequest(cs.CompleteRequestRequest(request_id=req.request_id), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
