"""GatewayService over gRPC: validate and translate, call GatewayApp, translate back."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from metrofed.domain import units
from metrofed.domain.limits import quote
from metrofed.domain.access import Role, acting_enterprise
from metrofed.domain.capability import DomainError
from metrofed.domain.lifecycle import RequestState
from metrofed.protoconv import (capability_to_proto, decision_to_proto, need_from_proto,
                                service_kind_from_proto, state_to_proto, timestamp)
from metrofed.v1 import common_pb2, gateway_service_pb2 as pb
from metrofed.v1 import gateway_service_pb2_grpc, request_pb2
from metrofed.trust.grpc_auth import caller
from gateway.app import GatewayApp

MAX_QUERY = 200


def request_to_proto(row, history=()) -> request_pb2.ServiceRequest:
    return request_pb2.ServiceRequest(
        request_id=row.request_id, enterprise_id=row.enterprise_id, need=request_pb2.Need.FromString(row.need),
        state=state_to_proto(RequestState(row.state)), assigned_centre_id=row.assigned_centre_id,
        assigned_capability_id=row.assigned_capability_id,
        routing=request_pb2.RoutingDecision.FromString(row.routing or b""),
        history=[request_pb2.StatusChange(state=state_to_proto(RequestState(h.state)), centre_id=h.centre_id,
                                          note=h.note, at=timestamp(h.at)) for h in history],
        trace_id=row.trace_id, created_at=timestamp(row.created_at), result_certificate=row.result_certificate,
        certificate=request_pb2.CertificateRef.FromString(row.certificate_ref) if row.certificate_ref else None)


def _freshness(snapshot, centre_id: str) -> Timestamp | None:
    stamp = snapshot.freshness(centre_id)
    if stamp is None:
        return None
    ts = Timestamp()
    ts.FromMilliseconds(stamp.timestamp_ms)
    return ts


def _text(t) -> common_pb2.LocalizedText:
    return common_pb2.LocalizedText(zh=t.zh, en=t.en)


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, app: GatewayApp):
        self.app = app

    def SearchCatalog(self, request, context):
        if len(request.text) > MAX_QUERY:
            raise DomainError("text", f"is {len(request.text)} characters long; at most {MAX_QUERY}")
        if not 0 <= request.limit <= 200:
            raise DomainError("limit", "must be between 0 and 200 (0 means 50)")
        if request.offset < 0:
            raise DomainError("offset", "must not be negative")
        kind = service_kind_from_proto(request.service_kind, "service_kind")
        qk = request.quantity_kind or None
        if qk is not None and qk not in units.QUANTITY_KINDS:
            raise DomainError("quantity_kind", f"unknown quantity kind {quote(qk)}")
        lo = hi = None
        if request.HasField("range"):
            r = request.range
            unit = units.parse_unit(r.unit, field="range.unit")
            if r.min > r.max:
                raise DomainError("range.min", f"{r.min:g} is greater than range.max {r.max:g}")
            if qk:
                units.check_kind(unit, qk, field="range.unit")
            lo, hi = units.to_si(r.min, unit, qk), units.to_si(r.max, unit, qk)
        result = self.app.snapshot().search(
            request.text, service_kind=kind, quantity_kind=qk, province=request.province or None,
            city=request.city or None, centre_id=request.centre_id or None, range_lo_si=lo, range_hi_si=hi,
            limit=request.limit or 50, offset=request.offset)
        snapshot = self.app.catalog.current()
        return pb.SearchCatalogResponse(
            hits=[pb.SearchHit(capability=capability_to_proto(h.capability),
                               centre_name=_text(h.centre.name) if h.centre else None,
                               city=_text(h.centre.city) if h.centre else None, score=h.score,
                               centre_freshness=_freshness(snapshot, h.capability.centre_id))
                  for h in result.hits],
            total=result.total,
            facets=[pb.Facet(name=name, counts=[pb.FacetCount(value=v, count=n) for v, n in
                                                sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))])
                    for name, counts in result.facets.items()])

    def RouteNeed(self, request, context):
        decision = self.app.route(need_from_proto(request.need))
        return pb.RouteNeedResponse(decision=decision_to_proto(decision))

    def SubmitRequest(self, request, context):
        if not request.HasField("need"):
            raise DomainError("need", "is required")
        enterprise = acting_enterprise(caller(), request.enterprise_id)
        row = self.app.submit(enterprise, request.need, request.idempotency_key)
        row, history = self.app.get(row.request_id)
        return pb.SubmitRequestResponse(request=request_to_proto(row, history))

    def GetRequest(self, request, context):
        row, history = self.app.get(request.request_id, viewer=caller())
        return pb.GetRequestResponse(request=request_to_proto(row, history))

    def ListRequests(self, request, context):
        who = caller()
        enterprise = (request.enterprise_id or None) if who is not None and who.role is Role.OPERATOR else \
            acting_enterprise(who, request.enterprise_id)
        return pb.ListRequestsResponse(requests=[request_to_proto(r) for r in
                                                 self.app.list(enterprise, request.limit)])

    def CancelRequest(self, request, context):
        row = self.app.cancel(request.request_id, request.reason, viewer=caller())
        row, history = self.app.get(row.request_id)
        return pb.CancelRequestResponse(request=request_to_proto(row, history))
