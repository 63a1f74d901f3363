"""CentreService over gRPC: translate messages, call CentreApp, translate back. Nothing else."""

from __future__ import annotations

from metrofed.domain.capability import DomainError
from metrofed.protoconv import (capability_from_proto, capability_to_proto, centre_from_proto, centre_to_proto,
                                state_from_proto, state_to_proto)
from metrofed.v1 import centre_service_pb2 as pb
from metrofed.v1 import centre_service_pb2_grpc, request_pb2
from metrofed.trust.grpc_auth import caller
from services.centre.app import CentreApp

MAX_TEXT = 10_000


def _inbox_item(row) -> pb.InboxItem:
    from metrofed.domain.lifecycle import RequestState

    return pb.InboxItem(request_id=row.request_id, enterprise_id=row.enterprise_id,
                        capability_id=row.capability_id, need=request_pb2.Need.FromString(row.need),
                        state=state_to_proto(RequestState(row.state)), attempt=row.attempt,
                        requested_by=row.requested_by)


def _required(value: str, field: str, limit: int = 200) -> str:
    if not value.strip():
        raise DomainError(field, "is required")
    if len(value) > limit:
        raise DomainError(field, f"is {len(value)} characters long; at most {limit} are allowed")
    return value


class CentreServicer(centre_service_pb2_grpc.CentreServiceServicer):
    def __init__(self, app: CentreApp, endpoint: str = ""):
        self.app = app
        self.endpoint = endpoint

    def GetProfile(self, request, context):
        return pb.GetProfileResponse(profile=centre_to_proto(self.app.profile, self.endpoint))

    def RegisterCentre(self, request, context):
        profile = self.app.register(centre_from_proto(request.profile))
        return pb.RegisterCentreResponse(profile=centre_to_proto(profile, self.endpoint))

    def PublishCapability(self, request, context):
        cap = capability_from_proto(request.capability, self.app.centre_id, version=1)
        return pb.PublishCapabilityResponse(capability=capability_to_proto(self.app.publish(cap)))

    def ReviseCapability(self, request, context):
        cap = capability_from_proto(request.capability, self.app.centre_id, version=1)
        return pb.ReviseCapabilityResponse(capability=capability_to_proto(self.app.revise(cap)))

    def WithdrawCapability(self, request, context):
        self.app.withdraw(_required(request.capability_id, "capability_id"), request.reason[:MAX_TEXT])
        return pb.WithdrawCapabilityResponse()

    def ListCapabilities(self, request, context):
        return pb.ListCapabilitiesResponse(capabilities=[capability_to_proto(c) for c in self.app.capabilities()])

    def ListInbox(self, request, context):
        state = None if request.state == 0 else state_from_proto(request.state)
        return pb.ListInboxResponse(items=[_inbox_item(r) for r in self.app.inbox(state)])

    def AcceptRequest(self, request, context):
        row = self.app.accept(_required(request.request_id, "request_id", 64), request.note[:MAX_TEXT])
        return pb.AcceptRequestResponse(item=_inbox_item(row))

    def DeclineRequest(self, request, context):
        row = self.app.decline(_required(request.request_id, "request_id", 64),
                               _required(request.reason, "reason", MAX_TEXT))
        return pb.DeclineRequestResponse(item=_inbox_item(row))

    def CompleteRequest(self, request, context):
        row = self.app.complete(_required(request.request_id, "request_id", 64), request.result_certificate,
                                request.note[:MAX_TEXT])
        return pb.CompleteRequestResponse(item=_inbox_item(row))

    def GetCertificate(self, request, context):
        row = self.app.certificate(_required(request.request_id, "request_id", 64), viewer=caller())
        return pb.GetCertificateResponse(certificate_ref=self.app.certificate_ref(row), document=row.body)
