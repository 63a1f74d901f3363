"""Transactional outbox and consumer de-duplication, shared by every service's schema.

A state change and the event announcing it are written in one database transaction (``add_event``);
``OutboxRelay`` later sends unsent rows to Kafka with acks=all and marks them sent. A crash between the
send and the mark re-sends the row, so every consumer de-duplicates on the envelope's event id
(``ProcessedEventMixin``): delivery is at-least-once, effects are exactly-once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import zlib

from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String, delete, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from opentelemetry import trace

from metrofed.bus import tracing
from metrofed.bus.envelope import wrap

log = logging.getLogger(__name__)


def _lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key for a table name (the same in every process)."""
    return zlib.crc32(f"metrofed:{name}".encode())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class OutboxMixin:
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(100))
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    value: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # None: a tombstone
    trace_carrier: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


class ProcessedEventMixin:
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    processed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def add_event(session: Session, outbox_cls, *, topic: str, key: str | None, event, producer: str) -> str:
    """Stages ``event`` (a protobuf message) for publication in the caller's transaction; returns its id."""
    env = wrap(event, producer)
    session.add(outbox_cls(event_id=env.event_id, event_type=env.event_type, topic=topic, key=key,
                           value=env.SerializeToString(), trace_carrier=tracing.capture_context()))
    return env.event_id


def add_tombstone(session: Session, outbox_cls, *, topic: str, key: str, event_type: str, event_id: str) -> None:
    session.add(outbox_cls(event_id=event_id, event_type=event_type, topic=topic, key=key, value=None,
                           trace_carrier=tracing.capture_context()))


def already_processed(session: Session, processed_cls, event_id: str, topic: str) -> bool:
    """True when ``event_id`` was handled before; otherwise records it in the caller's transaction."""
    if session.get(processed_cls, event_id) is not None:
        return True
    session.add(processed_cls(event_id=event_id, topic=topic))
    return False


class OutboxRelay:
    """Background thread: unsent outbox rows → Kafka (acks=all) → marked sent, in id order."""

    def __init__(self, sessions: sessionmaker, outbox_cls, producer, *, poll_seconds: float = 0.2,
                 batch: int = 500, keep_sent_seconds: float = 24 * 3600, name: str = "outbox-relay"):
        self._sessions = sessions
        self._cls = outbox_cls
        self._producer = producer
        self._poll = poll_seconds
        self._batch = batch
        self._keep_sent = dt.timedelta(seconds=keep_sent_seconds)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.sent_total = 0

    def start(self) -> "OutboxRelay":
        self._thread.start()
        return self

    def notify(self) -> None:
        """Called after a commit that added outbox rows, so they go out without waiting for the poll."""
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():  # stuck in a send to a vanished broker: a second sender would duplicate
            log.warning("outbox relay did not stop within %.0fs; unsent rows go out at the next start", timeout)
            return
        try:
            self.relay_once()  # last drain of what was committed before the stop
        except Exception:  # noqa: BLE001 - best effort on the way out; rows stay unsent and go next start
            log.exception("final outbox drain failed")

    def _run(self) -> None:
        backoff = self._poll
        last_purge = utcnow()
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                backoff = self._poll
                if utcnow() - last_purge > dt.timedelta(minutes=10):
                    self._purge()
                    last_purge = utcnow()
                if sent == self._batch:
                    continue  # more waiting
            except Exception:  # noqa: BLE001 - broker or DB down: keep the rows, retry with backoff
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 5.0)
            self._wake.wait(backoff)
            self._wake.clear()

    def relay_once(self) -> int:
        with self._sessions() as session:
            # Several replicas (gateways sharing PostgreSQL) may run a relay each. Only one may send at a
            # time, or a later row could overtake an earlier one for the same request (routed, then
            # cancelled): the others skip this round. SQLite has a single writer and needs no lock.
            if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(self._cls.__tablename__)}):
                return 0
            rows = session.scalars(
                select(self._cls).where(self._cls.sent_at.is_(None)).order_by(self._cls.id).limit(self._batch)
            ).all()
            if not rows:
                return 0
            pending = []
            try:
                for row in rows:
                    span, headers = tracing.start_producer_span(row.topic, row.key, row.event_id,
                                                                row.event_type, row.trace_carrier)
                    pending.append((row.id, span, None))
                    future = self._producer.send(
                        row.topic, key=row.key.encode() if row.key is not None else None,
                        value=row.value, headers=headers)
                    pending[-1] = (row.id, span, future)
                self._producer.flush()
                for _, span, future in pending:
                    meta = future.get(timeout=30)  # raises if the broker did not ack: rows stay unsent
                    span.set_attribute("messaging.destination.partition.id", str(meta.partition))
                    span.set_attribute("messaging.kafka.offset", meta.offset)
            except Exception as exc:
                for _, span, _f in pending:
                    span.record_exception(exc)
                    span.set_status(trace.StatusCode.ERROR)
                raise
            finally:
                for _, span, _f in pending:
                    span.end()
            session.execute(update(self._cls).where(self._cls.id.in_([i for i, _s, _f in pending]))
                            .values(sent_at=utcnow()))
            session.commit()
            self.sent_total += len(pending)
            return len(pending)

    def _purge(self) -> None:
        with self._sessions() as session:
            session.execute(delete(self._cls).where(self._cls.sent_at < utcnow() - self._keep_sent))
            session.commit()
