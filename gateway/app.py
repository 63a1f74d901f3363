"""The gateway's use cases: search, route, submit, follow, cancel — and the reaction to centres' status
events (including failover when a centre declines or stays silent).

State changes and the events they cause are written in one transaction (outbox). Routing itself is the
pure function metrofed.domain.routing.route over the current catalog snapshot.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from typing import Callable

from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import trace
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from metrofed import telemetry
from metrofed.bus import topics
from metrofed.bus.envelope import Decoded
from metrofed.bus.failures import PermanentFailure
from metrofed.db.outbox import add_event, already_processed, utcnow
from metrofed.domain.access import Principal, owns_request
from metrofed.domain.capability import DomainError
from metrofed.domain.catalog import Catalog, CatalogSnapshot, route_need
from metrofed.domain.lifecycle import (TERMINAL, RequestState, judge_status_event, needs_compensation,
                                       transition)
from metrofed.domain.need import Need
from metrofed.domain.routing import RoutingDecision
from metrofed.errors import Conflict, NotFound, Unavailable
from metrofed.protoconv import decision_to_proto, need_from_proto
from metrofed.v1 import events_pb2, request_pb2
from gateway.status_checks import checked_status
from gateway.models import HistoryRow, Outbox, ProcessedEvent, RequestRow

log = logging.getLogger(__name__)
OPEN_STATES = (RequestState.ROUTED.value, RequestState.RECEIVED.value, RequestState.ACCEPTED.value,
               RequestState.INFO_REQUESTED.value)

def _required(value: str, field: str, limit: int) -> str:
    if not value.strip():
        raise DomainError(field, "is required")
    if len(value) > limit:
        raise DomainError(field, f"is {len(value)} characters long; at most {limit} are allowed")
    return value


class GatewayApp:
    def __init__(self, catalog: Catalog, sessions: sessionmaker, *, on_commit: Callable[[], None] = lambda: None,
                 today: Callable[[], dt.date] = dt.date.today, load_ttl_seconds: float = 2.0,
                 default_sla: dt.timedelta = dt.timedelta(seconds=300),
                 clock_skew: dt.timedelta = dt.timedelta(seconds=5),
                 clock: Callable[[], dt.datetime] = utcnow, sweep_batch: int = 200):
        """``default_sla``: the response SLA of a centre that declares none; ``clock_skew``: how much later
        than a centre's deadline the gateway gives up on it, so that a centre whose clock runs behind has
        still refused the attempt by then (docs/failover.md)."""
        self.catalog = catalog
        self._default_sla = default_sla
        self._skew = clock_skew
        self._clock = clock
        self._sweep_batch = sweep_batch
        self._sessions = sessions
        self._on_commit = on_commit
        self._today = today
        self._load_ttl = load_ttl_seconds
        self._load: tuple[float, dict[str, float]] = (0.0, {})
        self._load_lock = threading.Lock()

    # ---- catalog and routing ----------------------------------------------------------------------------

    def snapshot(self) -> CatalogSnapshot:
        if not self.catalog.ready:
            raise Unavailable("the federated catalog is still loading from the bus; retry shortly")
        return self.catalog.current()

    def load(self) -> dict[str, float]:
        """Open requests per centre as a fraction of that centre's monthly capacity (cached briefly)."""
        now = time.monotonic()
        with self._load_lock:
            if now - self._load[0] < self._load_ttl:
                return self._load[1]
        with self._sessions() as s:
            open_by_centre = dict(s.execute(
                select(RequestRow.assigned_centre_id, func.count()).where(RequestRow.state.in_(OPEN_STATES))
                .group_by(RequestRow.assigned_centre_id)).all())
        snap = self.catalog.current()
        load = {}
        for centre_id, n in open_by_centre.items():
            capacity = sum(c.capacity_per_month for c in snap.capabilities_of(centre_id)) or 1
            load[centre_id] = n / capacity
        with self._load_lock:
            self._load = (now, load)
        return load

    def route(self, need: Need, exclude_centres: frozenset[str] = frozenset()) -> RoutingDecision:
        """The catalog index narrows (effective service kind, quantity kind, instrument, joined range, a sound
        uncertainty floor), ``route`` decides; the overlap lookup for a split runs only when nothing is
        routable (``catalog.route_need``: the same calls ``bench/routing.py`` measures)."""
        snap = self.snapshot()
        return route_need(snap, need, self.load(), self._today(), exclude_centres=exclude_centres)

    # ---- requests -----------------------------------------------------------------------------------

    def submit(self, enterprise_id: str, need_msg: request_pb2.Need, idempotency_key: str = "") -> RequestRow:
        _required(enterprise_id, "enterprise_id", 100)
        if len(idempotency_key) > 100:
            raise DomainError("idempotency_key", "at most 100 characters")
        need = need_from_proto(need_msg, today=self._today())
        if idempotency_key:
            prior = self._by_idempotency(enterprise_id, idempotency_key)
            if prior is not None:
                return prior
        decision = self.route(need)
        request_id = str(uuid.uuid4())
        span = trace.get_current_span()
        span.set_attribute("metrofed.request_id", request_id)
        row = RequestRow(request_id=request_id, enterprise_id=enterprise_id,
                         idempotency_key=idempotency_key or None, need=need_msg.SerializeToString(),
                         state=RequestState.SUBMITTED.value, attempt=0, tried_centres=[],
                         routing=decision_to_proto(decision).SerializeToString(),
                         trace_id=telemetry.current_trace_id_hex())
        try:
            with self._sessions.begin() as s:
                s.add(row)
                s.flush()  # the request row first: history rows reference it
                s.add(HistoryRow(request_id=request_id, state=RequestState.SUBMITTED.value,
                                 note=f"need: {need.describe()}"))
                self._assign(s, row, decision, need_msg, note_prefix="")
        except IntegrityError:
            prior = self._by_idempotency(enterprise_id, idempotency_key) if idempotency_key else None
            if prior is None:
                raise
            return prior
        if row.assigned_centre_id:
            span.set_attribute("metrofed.centre_id", row.assigned_centre_id)
        self._on_commit()
        return row

    def _by_idempotency(self, enterprise_id: str, key: str) -> RequestRow | None:
        with self._sessions() as s:
            return s.scalar(select(RequestRow).where(RequestRow.enterprise_id == enterprise_id,
                                                     RequestRow.idempotency_key == key))

    def _assign(self, s: Session, row: RequestRow, decision: RoutingDecision, need_msg, note_prefix: str) -> None:
        """Sends the request to the best candidate, or records it as a coverage gap."""
        if not decision.candidates:
            row.state = transition(RequestState(row.state), RequestState.UNROUTABLE).value
            reasons = "; ".join(f"{r.centre_id}/{r.capability_id}: {r.reason}" for r in decision.rejected[:5])
            split = ""
            if decision.split:
                split = " A split across centres could cover it: " + ", ".join(
                    f"{p.centre_id} {p.range_min:g}–{p.range_max:g} {p.unit}" for p in decision.split) + "."
            s.add(HistoryRow(request_id=row.request_id, state=row.state,
                             note=f"{note_prefix}no centre can do it (coverage gap). {reasons}{split}".strip()))
            return
        best = decision.candidates[0]
        row.state = transition(RequestState(row.state), RequestState.ROUTED).value
        row.attempt += 1
        row.assigned_centre_id, row.assigned_capability_id = best.centre_id, best.capability_id
        row.tried_centres = [*row.tried_centres, best.centre_id]
        row.respond_by = self._clock() + self.response_sla(best.centre_id)
        respond_by = Timestamp()
        respond_by.FromDatetime(row.respond_by)
        s.add(HistoryRow(request_id=row.request_id, state=row.state, centre_id=best.centre_id,
                         note=f"{note_prefix}{best.explanation}"))
        add_event(s, Outbox, topic=topics.inbox(best.centre_id), key=row.request_id, producer="gateway",
                  event=events_pb2.RequestRouted(
                      request_id=row.request_id, enterprise_id=row.enterprise_id, centre_id=best.centre_id,
                      capability_id=best.capability_id, need=need_msg, attempt=row.attempt,
                      requested_by="gateway", respond_by=respond_by))

    def response_sla(self, centre_id: str) -> dt.timedelta:
        """What the centre declared in its profile, else the gateway's default."""
        profile = self.catalog.current().centres.get(centre_id) if self.catalog.ready else None
        declared = getattr(profile, "response_sla_seconds", 0) or 0
        return dt.timedelta(seconds=declared) if declared > 0 else self._default_sla

    def _withdraw(self, s: Session, row: RequestRow, centre_id: str, attempt: int, reason_code: int,
                  reason: str) -> None:
        """Tells a centre, through its inbox, that one attempt is no longer its to do."""
        add_event(s, Outbox, topic=topics.inbox(centre_id), key=row.request_id, producer="gateway",
                  event=events_pb2.RequestCancelled(request_id=row.request_id, centre_id=centre_id,
                                                    reason=reason[:2000], attempt=attempt,
                                                    reason_code=reason_code))

    def get(self, request_id: str, viewer: Principal | None = None) -> tuple[RequestRow, list[HistoryRow]]:
        """``viewer`` None: the gateway itself. Another enterprise's request is NOT_FOUND, not
        PERMISSION_DENIED: a caller must not learn which request ids exist (docs/security.md)."""
        _required(request_id, "request_id", 64)
        with self._sessions() as s:
            row = s.get(RequestRow, request_id)
            if row is None or (viewer is not None and not owns_request(viewer, row.enterprise_id)):
                raise NotFound("request", request_id)
            history = s.scalars(select(HistoryRow).where(HistoryRow.request_id == request_id)
                                .order_by(HistoryRow.id)).all()
            return row, list(history)

    def list(self, enterprise_id: str | None, limit: int = 50) -> list[RequestRow]:
        """The newest requests of ``enterprise_id``, or of every enterprise when None (operators)."""
        if enterprise_id is not None:
            _required(enterprise_id, "enterprise_id", 100)
        if limit < 0:
            raise DomainError("limit", "must not be negative")
        q = select(RequestRow)
        if enterprise_id is not None:
            q = q.where(RequestRow.enterprise_id == enterprise_id)
        with self._sessions() as s:
            return list(s.scalars(q.order_by(RequestRow.created_at.desc()).limit(min(limit or 50, 500))))

    def cancel(self, request_id: str, reason: str = "", viewer: Principal | None = None) -> RequestRow:
        _required(request_id, "request_id", 64)
        with self._sessions.begin() as s:
            row = s.get(RequestRow, request_id, with_for_update=True)
            if row is None or (viewer is not None and not owns_request(viewer, row.enterprise_id)):
                raise NotFound("request", request_id)
            current = RequestState(row.state)
            if current in TERMINAL:
                raise Conflict(f"request {request_id} is already {current.value}")
            row.state = transition(current, RequestState.CANCELLED).value
            s.add(HistoryRow(request_id=request_id, state=row.state, centre_id=row.assigned_centre_id,
                             note=reason[:2000] or "cancelled by the enterprise"))
            if row.assigned_centre_id:
                self._withdraw(s, row, row.assigned_centre_id, row.attempt, events_pb2.CANCEL_REASON_ENTERPRISE,
                               reason)
        self._on_commit()
        return row

    # ---- centres' status events -----------------------------------------------------------------------

    def on_status_event(self, record, decoded: Decoded | None) -> None:
        ev, state = checked_status(decoded)
        span = trace.get_current_span()
        span.set_attribute("metrofed.request_id", ev.request_id)
        span.set_attribute("metrofed.centre_id", ev.centre_id)
        with self._sessions.begin() as s:
            if already_processed(s, ProcessedEvent, decoded.envelope.event_id, record.topic):
                return
            row = s.get(RequestRow, ev.request_id, with_for_update=True)
            if row is None:
                raise PermanentFailure("unknown-request", f"request_id: no request {ev.request_id!r} at this "
                                                          f"gateway (status {state.value} from {ev.centre_id})")
            if ev.centre_id not in (row.tried_centres or []):
                # signed by a real centre, about a request never sent to it: not its business to speak of
                raise PermanentFailure("unauthorised", f"centre {ev.centre_id[:60]} reported on request "
                                                       f"{ev.request_id[:64]}, which was never routed to it")
            verdict = judge_status_event(RequestState(row.state), row.attempt, row.assigned_centre_id,
                                         state, ev.attempt, ev.centre_id)
            if not verdict.apply:
                log.info("ignoring status %s for %s: %s", state.value, ev.request_id, verdict.why)
                if not needs_compensation(RequestState(row.state), row.attempt, row.assigned_centre_id,
                                          state, ev.attempt, ev.centre_id):
                    return
                self._compensate(s, row, ev.centre_id, ev.attempt, state)
            else:
                row.state = state.value
                if ev.HasField("certificate"):  # the reference only: the enterprise fetches it from the centre
                    row.certificate_ref = ev.certificate.SerializeToString()
                elif ev.result_certificate:  # a centre not upgraded yet still sends it inline
                    row.result_certificate = ev.result_certificate
                s.add(HistoryRow(request_id=row.request_id, state=state.value, centre_id=ev.centre_id,
                                 note=ev.note))
                if state is RequestState.DECLINED:
                    self._fail_over(s, row, f"declined by {ev.centre_id} ({ev.note}); ")
        self._on_commit()

    def _compensate(self, s: Session, row: RequestRow, centre_id: str, attempt: int, state: RequestState) -> None:
        """A centre took up an attempt that is no longer current (it answered after the gateway moved on):
        withdraw that attempt from it, and say so in the request's history. The request's state is left
        alone: the enterprise's view follows the current attempt only."""
        note = (f"compensation: {centre_id} reported {state.value} for attempt {attempt}, which is no longer "
                f"current (the request is {row.state} on attempt {row.attempt} at {row.assigned_centre_id}); "
                f"withdrawn from {centre_id}")
        s.add(HistoryRow(request_id=row.request_id, state=row.state, centre_id=centre_id, note=note))
        self._withdraw(s, row, centre_id, attempt, events_pb2.CANCEL_REASON_SUPERSEDED,
                       f"superseded: attempt {attempt} is no longer current")

    def _fail_over(self, s: Session, row: RequestRow, why: str) -> None:
        need_msg = request_pb2.Need.FromString(row.need)
        try:
            need = need_from_proto(need_msg, today=self._today())
        except DomainError as exc:
            # A rule the stored need can no longer satisfy (its deadline has passed): retrying would never
            # help and routing it anyway would be wrong. The request waits, visibly, for a person.
            row.state = transition(RequestState(row.state), RequestState.FAILED).value
            s.add(HistoryRow(request_id=row.request_id, state=row.state, centre_id=row.assigned_centre_id,
                             note=f"failover: {why}cannot route it again: {exc}"))
            return
        decision = self.route(need, exclude_centres=frozenset(row.tried_centres))
        if row.state != RequestState.DECLINED.value:
            row.state = RequestState.DECLINED.value
        self._assign(s, row, decision, need_msg, note_prefix=f"failover: {why}")
        row.routing = decision_to_proto(decision).SerializeToString()

    def _give_up_on(self, s: Session, row: RequestRow) -> None:
        """The assigned centre stayed silent past its deadline: record it, withdraw the attempt from the
        centre (so that, back, it never takes it up), then fail over."""
        centre, attempt = row.assigned_centre_id, row.attempt
        s.add(HistoryRow(request_id=row.request_id, state=RequestState.DECLINED.value, centre_id=centre,
                         note=f"no answer from {centre} by its response deadline (attempt {attempt}); "
                              f"withdrawn from {centre}"))
        self._withdraw(s, row, centre, attempt, events_pb2.CANCEL_REASON_FAILOVER,
                       f"failover: no answer by the response deadline of attempt {attempt}")
        row.state = RequestState.DECLINED.value
        self._fail_over(s, row, f"{centre} stayed silent; ")

    def _silent(self, now: dt.datetime):
        """Routed requests whose centre's deadline, plus the skew margin, has passed. Rows from before
        deadlines existed are judged by the default SLA from their last change."""
        return and_(RequestRow.state == RequestState.ROUTED.value, or_(
            RequestRow.respond_by < now - self._skew,
            and_(RequestRow.respond_by.is_(None), RequestRow.updated_at < now - self._default_sla - self._skew)))

    def sweep_silent(self) -> int:
        """Fails over every routed request whose centre did not answer by its deadline -- the whole backlog,
        in transactions of at most ``sweep_batch`` rows, so that row locks are held briefly.

        Several gateway replicas may sweep at once: each batch locks its rows ``FOR UPDATE SKIP LOCKED``
        (PostgreSQL), so replicas take disjoint batches instead of queueing behind each other. A row whose
        failover raises is logged and left for the next sweep; its batch is rolled back and redone
        without it (no savepoints: pysqlite's are unreliable)."""
        moved, broken = 0, set()
        while True:
            now = self._clock()
            q = select(RequestRow).where(self._silent(now))
            if broken:
                q = q.where(RequestRow.request_id.not_in(broken))
            q = q.order_by(RequestRow.respond_by).limit(self._sweep_batch).with_for_update(skip_locked=True)
            current = ""
            try:
                with self._sessions.begin() as s:
                    rows = list(s.scalars(q))
                    for row in rows:
                        current = row.request_id
                        self._give_up_on(s, row)
            except Exception:  # noqa: BLE001 - one bad request must not hold back the backlog
                if not current or current in broken:
                    raise  # not a request's fault (database down): the sweeper's next round
                log.exception("failover of silent request %s failed; the next sweep retries it", current)
                broken.add(current)
                continue
            if rows:
                moved += len(rows)
                self._on_commit()
            if len(rows) < self._sweep_batch:
                return moved
