"""What a centre does, as use cases. Each writes its state change and the event announcing it in one
transaction (outbox); the relay publishes the event after commit.

The HTTP-free, Kafka-free core of the centre service: the gRPC API (grpc_api.py) and the inbox consumer
(__main__.py) both call into this class and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import replace
from typing import Callable

from opentelemetry import trace
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from metrofed.bus import topics
from metrofed.bus.envelope import WITHDRAWN, Decoded
from metrofed.bus.failures import PermanentFailure
from metrofed.db.outbox import add_event, add_tombstone, already_processed, utcnow
from metrofed.domain import records
from metrofed.domain.access import Principal, Role, owns_request
from metrofed.domain.capability import Capability, CentreProfile, DomainError
from metrofed.domain.dcc import minimal_certificate
from metrofed.domain.lifecycle import RequestState, arrived_too_late, cancel_applies, transition
from metrofed.errors import Conflict, NotFound
from metrofed.domain.limits import quote
from metrofed.protoconv import capability_to_proto, centre_to_proto, state_to_proto
from metrofed.v1 import events_pb2, request_pb2
from services.centre.inbox_checks import checked_inbox_event, unsatisfiable
from services.centre.models import CapabilityRow, CertificateRow, InboxRow, Outbox, ProcessedEvent, ProfileRow

log = logging.getLogger(__name__)

# A certificate is stored here and fetched by reference, so it is not bound by the bus (512 KiB per event)
# but by what one gRPC message carries comfortably (4 MiB): a DCC with many measurement results and an
# embedded signature stays far below 2 MiB.
MAX_CERTIFICATE_BYTES = 2 * 1024 * 1024
DCC_MEDIA_TYPE = "application/xml"


class CentreApp:
    def __init__(self, profile: CentreProfile, sessions: sessionmaker, *, endpoint: str = "",
                 on_commit: Callable[[], None] = lambda: None, clock: Callable[[], dt.datetime] = utcnow):
        self.profile = profile
        self._clock = clock  # judges the gateway's response deadlines (docs/failover.md)
        self.centre_id = profile.centre_id
        self._sessions = sessions
        self.endpoint = endpoint
        self._on_commit = on_commit  # wakes the outbox relay

    # ---- registration and capabilities ---------------------------------------------------------------

    def register(self, profile: CentreProfile) -> CentreProfile:
        if profile.centre_id != self.centre_id:
            raise DomainError("profile.centre_id", f"this service is centre {quote(self.centre_id)}, "
                                                   f"not {quote(profile.centre_id)}")
        with self._sessions.begin() as s:
            row = s.get(ProfileRow, self.centre_id)
            data = records.centre_to_dict(profile)
            if row is None:
                s.add(ProfileRow(centre_id=self.centre_id, data=data))
            else:
                row.data = data
            add_event(s, Outbox, topic=topics.CENTRES, key=self.centre_id, producer=self.centre_id,
                      event=events_pb2.CentreRegistered(profile=centre_to_proto(profile, self.endpoint)))
        self.profile = profile
        self._on_commit()
        return profile

    def ensure_registered(self) -> None:
        """On start: (re-)announce the profile when the database has none or a different one."""
        with self._sessions() as s:
            row = s.get(ProfileRow, self.centre_id)
            current = row.data if row else None
        if current != records.centre_to_dict(self.profile):
            self.register(self.profile)

    def publish(self, cap: Capability) -> Capability:
        with self._sessions.begin() as s:
            row = s.get(CapabilityRow, cap.capability_id)
            if row is not None and not row.withdrawn:
                raise Conflict(f"capability {quote(cap.capability_id)} exists: revise it instead")
            version = 1 if row is None else row.version + 1
            cap = replace(cap, centre_id=self.centre_id, version=version)
            self._store(s, row, cap)
        self._on_commit()
        return cap

    def revise(self, cap: Capability) -> Capability:
        with self._sessions.begin() as s:
            row = s.get(CapabilityRow, cap.capability_id)
            if row is None or row.withdrawn:
                raise NotFound("capability", cap.capability_id)
            cap = replace(cap, centre_id=self.centre_id, version=row.version + 1)
            self._store(s, row, cap)
        self._on_commit()
        return cap

    def _store(self, s: Session, row: CapabilityRow | None, cap: Capability) -> None:
        data = records.capability_to_dict(cap)
        if row is None:
            s.add(CapabilityRow(capability_id=cap.capability_id, version=cap.version, data=data))
        else:
            row.version, row.data, row.withdrawn = cap.version, data, False
        add_event(s, Outbox, topic=topics.CAPABILITIES, key=cap.key, producer=self.centre_id,
                  event=events_pb2.CapabilityPublished(capability=capability_to_proto(cap)))

    def withdraw(self, capability_id: str, reason: str = "") -> None:
        with self._sessions.begin() as s:
            row = s.get(CapabilityRow, capability_id)
            if row is None or row.withdrawn:
                raise NotFound("capability", capability_id)
            row.withdrawn = True
            add_tombstone(s, Outbox, topic=topics.CAPABILITIES, key=f"{self.centre_id}/{capability_id}",
                          event_type=WITHDRAWN, event_id=str(uuid.uuid4()), version=row.version)
        log.info("withdrew %s (%s)", capability_id, reason)
        self._on_commit()

    def capabilities(self) -> list[Capability]:
        with self._sessions() as s:
            rows = s.scalars(select(CapabilityRow).where(CapabilityRow.withdrawn.is_(False))
                             .order_by(CapabilityRow.capability_id)).all()
            return [self._cap(r) for r in rows]

    def _cap(self, row: CapabilityRow) -> Capability:
        return records.capability_from_dict(self.centre_id, row.data, version=row.version)

    def seed(self, caps: list[Capability]) -> int:
        """Publishes seed capabilities that this database has never seen (operators' later edits win)."""
        with self._sessions() as s:
            known = set(s.scalars(select(CapabilityRow.capability_id)))
        fresh = [c for c in caps if c.capability_id not in known]
        for cap in fresh:
            self.publish(cap)
        return len(fresh)

    # ---- the inbox ------------------------------------------------------------------------------------

    def on_inbox_event(self, record, decoded: Decoded | None) -> None:
        """Handles one record of this centre's inbox topic, exactly once per event id."""
        event = checked_inbox_event(decoded, self.centre_id)
        span = trace.get_current_span()
        span.set_attribute("metrofed.centre_id", self.centre_id)
        if getattr(event, "request_id", ""):
            span.set_attribute("metrofed.request_id", event.request_id)
        with self._sessions.begin() as s:
            if already_processed(s, ProcessedEvent, decoded.envelope.event_id, record.topic):
                return
            if isinstance(event, events_pb2.RequestRouted):
                self._receive(s, event)
            elif isinstance(event, events_pb2.RequestCancelled):
                self._cancelled(s, event)
        self._on_commit()

    def _receive(self, s: Session, ev: events_pb2.RequestRouted) -> None:
        existing = s.get(InboxRow, ev.request_id)
        if existing is not None and existing.attempt >= ev.attempt:
            return  # the same request re-sent under another event id: already have it
        quantity = max(ev.need.quantity, 1)
        row = existing or InboxRow(request_id=ev.request_id)
        row.enterprise_id, row.capability_id = ev.enterprise_id, ev.capability_id
        row.need, row.quantity, row.attempt = ev.need.SerializeToString(), quantity, ev.attempt
        row.requested_by = ev.requested_by or "gateway"
        row.state, row.note = RequestState.RECEIVED.value, ""
        why_never = unsatisfiable(ev)
        if why_never:
            row.capability_id = ""  # it may not even fit the column
        if existing is None:
            s.add(row)
        if why_never:
            self._set_state(s, row, RequestState.DECLINED, why_never)
            return
        respond_by = ev.respond_by.ToDatetime(tzinfo=dt.timezone.utc) if ev.HasField("respond_by") else None
        cap = s.get(CapabilityRow, ev.capability_id)
        if arrived_too_late(respond_by, self._clock()):
            # The gateway may already have moved it: taking it up could make two centres do the same work.
            self._set_state(s, row, RequestState.DECLINED,
                            f"arrived after its response deadline ({respond_by.isoformat(timespec='seconds')})")
        elif cap is None or cap.withdrawn:
            self._set_state(s, row, RequestState.DECLINED, "capability no longer offered")
        elif not self.profile.auto_accept:
            self._emit(s, row)  # RECEIVED: an operator accepts or declines through the API
        elif self._taken_this_month(s, ev.capability_id) + quantity > (cap.data.get("capacity_per_month") or 0):
            self._set_state(s, row, RequestState.DECLINED, "no capacity left this month")
        else:
            self._set_state(s, row, RequestState.ACCEPTED, "accepted automatically: capacity available")

    def _taken_this_month(self, s: Session, capability_id: str) -> int:
        start = dt.datetime.now(dt.timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        taken = s.scalar(select(func.coalesce(func.sum(InboxRow.quantity), 0)).where(
            InboxRow.capability_id == capability_id,
            InboxRow.state.in_([RequestState.ACCEPTED.value, RequestState.COMPLETED.value]),
            InboxRow.created_at >= start))
        return int(taken or 0)

    def _cancelled(self, s: Session, ev: events_pb2.RequestCancelled) -> None:
        row = s.get(InboxRow, ev.request_id)
        if row is None:
            raise PermanentFailure("unknown-request", f"request_id: {ev.request_id!r} was never routed here")
        if not cancel_applies(RequestState(row.state), row.attempt, ev.attempt):
            log.info("cancel of %s attempt %d ignored: holding attempt %d in state %s", ev.request_id,
                     ev.attempt, row.attempt, row.state)
            return
        row.state, row.note = RequestState.CANCELLED.value, ev.reason

    def _set_state(self, s: Session, row: InboxRow, state: RequestState, note: str,
                   certificate: bytes = b"") -> None:
        row.state = transition(RequestState(row.state), state).value
        row.note = note
        ref = self._keep_certificate(s, row.request_id, certificate) if certificate else None
        self._emit(s, row, ref)

    def _emit(self, s: Session, row: InboxRow, certificate: request_pb2.CertificateRef | None = None) -> None:
        add_event(s, Outbox, topic=topics.REQUEST_STATUS, key=row.request_id, producer=self.centre_id,
                  event=events_pb2.RequestStatusChanged(
                      request_id=row.request_id, centre_id=self.centre_id,
                      state=state_to_proto(RequestState(row.state)), note=row.note, attempt=row.attempt,
                      certificate=certificate))

    # ---- certificates (claim check: stored here, only the reference travels) ------------------------------

    def _keep_certificate(self, s: Session, request_id: str, body: bytes) -> request_pb2.CertificateRef:
        row = CertificateRow(certificate_id=str(uuid.uuid4()), request_id=request_id, media_type=DCC_MEDIA_TYPE,
                             sha256=hashlib.sha256(body).hexdigest(), size_bytes=len(body), body=body)
        s.add(row)
        return self.certificate_ref(row)

    def certificate_ref(self, row: CertificateRow) -> request_pb2.CertificateRef:
        return request_pb2.CertificateRef(centre_id=self.centre_id, certificate_id=row.certificate_id,
                                          sha256=row.sha256, size_bytes=row.size_bytes, media_type=row.media_type)

    def certificate(self, request_id: str, viewer: Principal | None = None) -> CertificateRow:
        """The stored certificate of a completed request, for this centre's staff, an operator, or the
        enterprise that owns the request (``viewer``; None: the centre itself). Anyone else gets NOT_FOUND,
        as for a request that does not exist (docs/security.md)."""
        with self._sessions() as s:
            row = s.scalar(select(CertificateRow).where(CertificateRow.request_id == request_id))
            owner = s.scalar(select(InboxRow.enterprise_id).where(InboxRow.request_id == request_id))
            if row is None or (viewer is not None and viewer.role is Role.ENTERPRISE
                               and not owns_request(viewer, owner or "")):
                raise NotFound("certificate of request", request_id)
            s.expunge(row)
            return row

    # ---- operator actions -----------------------------------------------------------------------------

    def inbox(self, state: RequestState | None = None) -> list[InboxRow]:
        with self._sessions() as s:
            q = select(InboxRow).order_by(InboxRow.created_at)
            if state is not None:
                q = q.where(InboxRow.state == state.value)
            rows = s.scalars(q).all()
            s.expunge_all()
            return list(rows)

    def _act(self, request_id: str, state: RequestState, note: str, certificate: bytes = b"") -> InboxRow:
        with self._sessions.begin() as s:
            row = s.get(InboxRow, request_id)
            if row is None:
                raise NotFound("request", request_id)
            self._set_state(s, row, state, note, certificate)
            s.flush()
            s.expunge(row)
        self._on_commit()
        return row

    def accept(self, request_id: str, note: str = "") -> InboxRow:
        return self._act(request_id, RequestState.ACCEPTED, note or "accepted by the centre")

    def decline(self, request_id: str, reason: str) -> InboxRow:
        if not reason.strip():
            raise DomainError("reason", "a decline needs a reason the enterprise can read")
        return self._act(request_id, RequestState.DECLINED, reason)

    def complete(self, request_id: str, certificate: str = "", note: str = "") -> InboxRow:
        body = certificate.encode()
        if len(body) > MAX_CERTIFICATE_BYTES:
            raise DomainError("result_certificate", f"is {len(body):,} bytes; a certificate may be at most "
                                                    f"{MAX_CERTIFICATE_BYTES:,} bytes (2 MiB)")
        if not certificate:
            with self._sessions() as s:
                row = s.get(InboxRow, request_id)
                if row is None:
                    raise NotFound("request", request_id)
                certificate = minimal_certificate(
                    certificate_id=f"{self.centre_id}-{request_id}", laboratory=str(self.profile.name),
                    customer=row.enterprise_id, capability_id=row.capability_id,
                    issued=dt.datetime.now(dt.timezone.utc))
            body = certificate.encode()
        return self._act(request_id, RequestState.COMPLETED, note or "completed", body)
