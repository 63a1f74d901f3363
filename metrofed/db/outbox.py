"""Transactional outbox and consumer de-duplication, shared by every service's schema.

A state change and the event announcing it are written in one database transaction (``add_event``);
``OutboxRelay`` later sends unsent rows to Kafka with acks=all and marks them sent. A crash between the
send and the mark re-sends the row, so every consumer de-duplicates on the envelope's event id
(``ProcessedEventMixin``): delivery is at-least-once, effects are exactly-once.

Order is kept per (topic, key), not across the whole table: a row the broker refuses for good is marked
dead and skipped, a row that fails for the moment holds back only the later rows of its own key. The
rules and the reasons are in docs/outbox.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable

from kafka.errors import KafkaTimeoutError
from opentelemetry import trace
from sqlalchemy import JSON, DateTime, Integer, LargeBinary, String, Text, delete, func, select, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from metrofed.bus import tracing
from metrofed.bus.envelope import wrap
from metrofed.bus.signed import H_WITHDRAWN, seal_batch
from metrofed.bus.event_size import MAX_EVENT_BYTES, largest_field
from metrofed.bus.send_failures import SendFailure, classify, topic_problem
from metrofed.domain.capability import DomainError
from metrofed.trust.signing import Signer

log = logging.getLogger(__name__)


def _lock_key(name: str) -> int:
    """A stable 32-bit advisory-lock key for a table name (the same in every process)."""
    return zlib.crc32(f"metrofed:{name}".encode())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ns(at: dt.datetime) -> int:
    if at.tzinfo is None:  # SQLite hands back naive datetimes for what was stored as UTC
        at = at.replace(tzinfo=dt.timezone.utc)
    return int(at.timestamp() * 1_000_000) * 1000


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
    # Failed sends: how often, the last reason, and when the row was given up as dead (never sent again
    # unless an operator re-drives it with `metrofed outbox retry`).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


class ProcessedEventMixin:
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    processed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventTooLarge(DomainError):
    """The event announcing a change would exceed ``MAX_EVENT_BYTES``: the change is refused (the caller's
    transaction rolls back) rather than accepted and then never delivered."""


def add_event(session: Session, outbox_cls, *, topic: str, key: str | None, event, producer: str) -> str:
    """Stages ``event`` (a protobuf message) for publication in the caller's transaction; returns its id.

    Raises ``EventTooLarge`` naming the event's biggest field (``capability.bands``) when the serialized
    envelope would exceed ``MAX_EVENT_BYTES``; an API call maps that to INVALID_ARGUMENT.
    """
    env = wrap(event, producer)
    value = env.SerializeToString()
    if len(value) > MAX_EVENT_BYTES:
        raise EventTooLarge(largest_field(event) or "event",
                            f"makes the {env.event_type} event {len(value):,} bytes; an event may be at most "
                            f"{MAX_EVENT_BYTES:,} bytes (the broker accepts ~1 MB per record)")
    session.add(outbox_cls(event_id=env.event_id, event_type=env.event_type, topic=topic, key=key,
                           value=value, trace_carrier=tracing.capture_context()))
    return env.event_id


def add_tombstone(session: Session, outbox_cls, *, topic: str, key: str, event_type: str, event_id: str,
                  version: int | None = None) -> None:
    """Stages a tombstone. ``version`` (the version withdrawn) is saved with the row's headers (the trace
    carrier) and goes out as a header covered by the signature (metrofed/bus/signed.py)."""
    carrier = tracing.capture_context()
    if version is not None:
        carrier[H_WITHDRAWN] = str(version)
    session.add(outbox_cls(event_id=event_id, event_type=event_type, topic=topic, key=key, value=None,
                           trace_carrier=carrier))


def already_processed(session: Session, processed_cls, event_id: str, topic: str) -> bool:
    """True when ``event_id`` was handled before; otherwise records it in the caller's transaction."""
    if session.get(processed_cls, event_id) is not None:
        return True
    session.add(processed_cls(event_id=event_id, topic=topic))
    return False


class RelayStalled(RuntimeError):
    """Every row tried this round failed for a transient reason and none was acknowledged: the broker is
    most likely unreachable. The rows stay pending; the relay loop backs off as a whole."""


@dataclass
class _Attempt:
    row_id: int
    stream: tuple[str, str | None]  # (topic, key): the unit of ordering
    span: trace.Span
    record: dict  # producer.send() arguments, to send it again alone
    future: object = None
    failure: SendFailure | None = None
    exc: BaseException | None = None

    def refused_by_broker(self) -> bool:
        """A non-retriable error came back from the broker (not raised by send() before sending)."""
        return self.future is not None and self.exc is not None and getattr(self.exc, "retriable", True) is False


class OutboxRelay:
    """Background thread: pending outbox rows → Kafka (acks=all) → marked sent, in order per (topic, key).

    Each round takes the oldest pending row of every (topic, key) — one in flight per key, so a later row
    of a key is only sent after the broker acknowledged the earlier one — sends them all, waits for the
    acknowledgements, and records the outcome of each row on its own: acknowledged → sent; refused for
    good → dead (``failed_at``), and the key's later rows go on; failed for the moment → the key waits
    with exponential backoff while every other key goes on.
    """

    def __init__(self, sessions: sessionmaker, outbox_cls, producer, *, signer: Signer | None = None,
                 poll_seconds: float = 0.2,
                 batch: int = 500, keep_sent_seconds: float = 24 * 3600, name: str = "outbox-relay",
                 ack_timeout: float = 30.0, retry_base_seconds: float = 0.5, retry_max_seconds: float = 60.0,
                 producer_factory: Callable[[], object] | None = None, renew_after_seconds: float = 10.0):
        """``renew_after_seconds``: when nothing has been acknowledged for that long on end, the producer is
        replaced (docs/failover.md: after a broker SIGKILL one kafka-python 3.0.12 producer in several never
        refreshed its metadata again, while its process's consumer reconnected at once)."""
        self._sessions = sessions
        self._cls = outbox_cls
        self._producer = self._original_producer = producer
        self._signer = signer  # every service passes one; None (unsigned) only in relay tests and benchmarks
        self._producer_factory = producer_factory  # default: a copy of ``producer``'s settings
        self._renew_after = renew_after_seconds
        self._poll = poll_seconds
        self._batch = batch
        self._keep_sent = dt.timedelta(seconds=keep_sent_seconds)
        self._ack_timeout = ack_timeout
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        # (topic, key) -> (monotonic time before which it is not tried again, consecutive failures).
        # In memory on purpose: backoff only paces this relay's attempts; the order itself is kept by the
        # database (the oldest pending row of a key is the only one ever sent), so a restarted or other
        # replica's relay may try at once without breaking it.
        self._backoff: dict[tuple[str, str | None], tuple[float, int]] = {}
        # topic -> monotonic time: a topic whose metadata did not come within max_block_ms waits as a whole,
        # since every send to it would block that long again.
        self._topic_wait: dict[str, float] = {}
        self._more = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.sent_total = 0
        self.dead_total = 0  # rows this relay gave up on (the table keeps them: dead_rows())
        self.retried_total = 0  # transient failures (each attempt counts)
        self.producer_renewals = 0

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
        if self._producer is not self._original_producer:
            self._producer.close(timeout=5)

    def _run(self) -> None:
        backoff = self._poll
        last_purge = utcnow()
        stalled_since = None
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                # keys waiting on failures and nothing acknowledged: stalled (topics in backoff send nothing)
                stalled_since = None if sent or not self._backoff else stalled_since or time.monotonic()
                stalled_since = self._renew_if_stalled(stalled_since)
                backoff = self._poll
                if utcnow() - last_purge > dt.timedelta(minutes=10):
                    self._purge()
                    last_purge = utcnow()
                if self._more:
                    continue  # a full batch went: more may be waiting
            except RelayStalled as exc:
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                # at most 1 s: a longer wait only delays the first send once the broker is back
                backoff = min(backoff * 2, 1.0)
                stalled_since = self._renew_if_stalled(stalled_since or time.monotonic())
            except Exception:  # noqa: BLE001 - database down: keep the rows, retry with backoff
                log.exception("outbox relay failed; retrying in %.1fs", backoff)
                backoff = min(backoff * 2, 1.0)
            self._wake.wait(backoff)
            self._wake.clear()

    def _heads(self, session: Session, now: float) -> list:
        """The oldest pending row of every (topic, key), oldest first, leaving out keys in backoff."""
        c = self._cls
        firsts = select(func.min(c.id)).where(c.sent_at.is_(None), c.failed_at.is_(None)).group_by(c.topic, c.key)
        waiting = {k for k, (until, _n) in self._backoff.items() if until > now}
        topics_waiting = [t for t, until in self._topic_wait.items() if until > now]
        q = select(c).where(c.id.in_(firsts))
        if topics_waiting:
            q = q.where(c.topic.not_in(topics_waiting))
        # Keys in backoff are dropped here rather than in SQL; fetching that many more keeps the batch full.
        rows = session.scalars(q.order_by(c.id).limit(self._batch + len(waiting))).all()
        return [r for r in rows if (r.topic, r.key) not in waiting][:self._batch]

    def relay_once(self) -> int:
        """Sends until nothing more can go now; returns how many rows the broker acknowledged (marked sent).

        Raises ``RelayStalled`` when rows were tried, none went and none was refused for good."""
        total = dead = waiting = 0
        first_reason = ""
        self._more = False
        while total < self._batch:
            outcome = self._round()
            if outcome is None:
                break
            sent, died, wait, reason = outcome
            total, dead, waiting = total + sent, dead + died, waiting + wait
            first_reason = first_reason or reason
            if not sent and not died:
                break  # nothing moved: the keys left are waiting for the broker
            # Something was acknowledged or given up: the next rows of those keys are heads now.
        self._more = total >= self._batch
        if waiting and not total and not dead:
            raise RelayStalled(f"{waiting} row(s) not acknowledged: {first_reason}")
        return total

    def _round(self) -> tuple[int, int, int, str] | None:
        """One row per (topic, key): send, wait for the acks, record each outcome; None when idle."""
        with self._sessions() as session:
            # Several replicas (gateways sharing PostgreSQL) may run a relay each. Only one may send at a
            # time, or a later row could overtake an earlier one for the same request (routed, then
            # cancelled): the others skip this round. SQLite has a single writer and needs no lock.
            if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _lock_key(self._cls.__tablename__)}):
                return None
            rows = self._heads(session, time.monotonic())
            if not rows:
                return None
            attempts = self._send_all(rows)
            self._await_acks(attempts)
            self._confirm_alone(attempts)
            sent, dead, waiting = self._record(session, attempts)
            session.commit()
        self.sent_total += sent
        return sent, dead, len(waiting), waiting[0].failure.reason if waiting else ""

    def _send_all(self, rows) -> list[_Attempt]:
        """Hands every row to the producer. send() blocks up to ``max_block_ms`` when the producer has no
        metadata for a topic (not created yet, or the broker unreachable since start): after one such
        wait the topic's other rows are left for a later round (and the topic waits out its backoff),
        after two (two topics) every row of this round is."""
        attempts: list[_Attempt] = []
        unknown_topics: set[str] = set()
        for row, (value, seal_headers) in zip(rows, self._seal(rows)):
            if len(unknown_topics) >= 2 or row.topic in unknown_topics:
                continue
            attempt = self._send(row, value, seal_headers)
            if isinstance(attempt.exc, KafkaTimeoutError):
                unknown_topics.add(row.topic)
            attempts.append(attempt)
        return attempts

    def _seal(self, rows) -> list[tuple[bytes | None, list[tuple[str, bytes]]]]:
        """Signs what this round sends with one signature (metrofed/trust/signing.py explains the batch).
        A tombstone's withdrawn version goes out as a header either way (and under the seal when signed)."""
        withdrawn = [int(row.trace_carrier[H_WITHDRAWN]) if H_WITHDRAWN in (row.trace_carrier or {}) else None
                     for row in rows]
        extra = [[(H_WITHDRAWN, str(w).encode())] if w is not None else [] for w in withdrawn]
        if self._signer is None:
            return [(row.value, x) for row, x in zip(rows, extra)]
        sealed = seal_batch(self._signer, [
            (row.topic, row.key, row.value, row.event_id, row.event_type, _ns(row.created_at), w)
            for row, w in zip(rows, withdrawn)])
        return [(value, x + headers) for (value, headers), x in zip(sealed, extra)]

    def _send(self, row, value: bytes | None, seal_headers: list[tuple[str, bytes]]) -> _Attempt:
        span, headers = tracing.start_producer_span(row.topic, row.key, row.event_id, row.event_type,
                                                    row.trace_carrier)
        record = dict(topic=row.topic, key=row.key.encode() if row.key is not None else None, value=value,
                      headers=headers + seal_headers)
        attempt = _Attempt(row.id, (row.topic, row.key), span, record)
        problem = topic_problem(row.topic)
        if problem:
            attempt.failure = SendFailure(True, problem)
            return attempt
        try:
            attempt.future = self._producer.send(**record)
        except Exception as exc:  # noqa: BLE001 - refused before sending (size, metadata): judged per row
            attempt.failure, attempt.exc = classify(exc), exc
        return attempt

    def _confirm_alone(self, attempts: list[_Attempt]) -> None:
        """kafka-python (3.0.12) puts an idempotent producer into a fatal state on any non-retriable answer
        from the broker (a record too large for the topic, no permission) and then fails *every* batch it
        holds with that same error — the records of other keys sent beside it included — and every later
        one. So after such an answer: a fresh producer, and each record that failed that way is sent again
        on its own; only one that the broker refuses alone is dead."""
        suspects = [a for a in attempts if a.refused_by_broker()]
        if not suspects:
            return
        self._renew_producer()
        for a in suspects:
            a.failure = a.exc = None
            a.future = None
            try:
                a.future = self._producer.send(**a.record)
            except Exception as exc:  # noqa: BLE001 - judged like any send
                a.failure, a.exc = classify(exc), exc
                continue
            self._await_acks([a])
            if a.refused_by_broker():
                self._renew_producer()

    def _renew_if_stalled(self, stalled_since: float | None) -> float | None:
        """A fresh producer when nothing was acknowledged for ``renew_after_seconds``; the keys and topics
        waiting on the old one's failures are tried at once with the new one."""
        if stalled_since is None or time.monotonic() - stalled_since <= self._renew_after:
            return stalled_since
        try:
            self._renew_producer(f"nothing acknowledged for {self._renew_after:.0f}s")
        except Exception:  # noqa: BLE001 - the broker still away: keep the old one, try again later
            log.warning("outbox relay: could not make a new producer", exc_info=True)
            return time.monotonic()
        self._backoff.clear()
        self._topic_wait.clear()
        return None

    def _renew_producer(self, why: str = "after a record the broker refused") -> None:
        old = self._producer
        if self._producer_factory is not None:
            self._producer = self._producer_factory()
        else:  # the same client settings (bootstrap, TLS, acks, idempotence...) on a new client
            cls = type(old)
            self._producer = cls(**{k: v for k, v in old.config.items() if k in cls.DEFAULT_CONFIG})
        if old is not self._original_producer:
            old.close(timeout=1)  # ours; the one we were given is closed by its owner
        self.producer_renewals += 1
        log.warning("outbox relay: producer renewed (%s)", why)

    def _await_acks(self, attempts: list[_Attempt]) -> None:
        """Waits for the broker's answer on every record, all within one ``ack_timeout``."""
        deadline = time.monotonic() + self._ack_timeout
        try:
            self._producer.flush(timeout=self._ack_timeout)
        except KafkaTimeoutError:
            pass  # the records not answered in time are judged one by one below
        for a in attempts:
            if a.future is None:
                continue
            try:
                meta = a.future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - the broker did not ack: the row stays unsent
                a.failure, a.exc = classify(exc), exc
                continue
            a.span.set_attribute("messaging.destination.partition.id", str(meta.partition))
            a.span.set_attribute("messaging.kafka.offset", meta.offset)

    def _record(self, session: Session, attempts: list[_Attempt]):
        now, clock = utcnow(), time.monotonic()
        sent, dead, waiting = [], [], []
        for a in attempts:
            if a.failure is None:
                sent.append(a)
                self._backoff.pop(a.stream, None)
                self._topic_wait.pop(a.stream[0], None)
            else:
                a.span.record_exception(a.exc or RuntimeError(a.failure.reason))
                a.span.set_status(trace.StatusCode.ERROR, a.failure.reason)
                values = dict(attempts=self._cls.attempts + 1, error=a.failure.reason)
                if a.failure.permanent:
                    dead.append(a)
                    values["failed_at"] = now
                    self._backoff.pop(a.stream, None)
                    log.error("outbox row %d (%s) is dead and skipped: %s", a.row_id, a.stream, a.failure.reason)
                else:
                    waiting.append(a)
                    n = self._backoff.get(a.stream, (0.0, 0))[1] + 1
                    delay = min(self._retry_base * 2 ** (n - 1), self._retry_max)
                    self._backoff[a.stream] = (clock + delay, n)
                    if a.future is None and isinstance(a.exc, KafkaTimeoutError):  # no metadata for the topic
                        self._topic_wait[a.stream[0]] = clock + delay
                    log.warning("outbox row %d (%s) not sent, retrying its key in %.1fs: %s", a.row_id,
                                a.stream, delay, a.failure.reason)
                session.execute(update(self._cls).where(self._cls.id == a.row_id).values(**values))
            a.span.end()
        if sent:
            session.execute(update(self._cls).where(self._cls.id.in_([a.row_id for a in sent]))
                            .values(sent_at=now))
        self.dead_total += len(dead)
        self.retried_total += len(waiting)
        return len(sent), len(dead), waiting

    def _purge(self) -> None:
        with self._sessions() as session:
            session.execute(delete(self._cls).where(self._cls.sent_at < utcnow() - self._keep_sent))
            session.commit()


# ---- dead rows: what the operator sees and re-drives (metrofed outbox dead / retry) ----------------------

def dead_rows(session: Session, outbox_cls, limit: int = 200) -> list:
    """Rows the relay gave up on, oldest first."""
    return list(session.scalars(select(outbox_cls).where(outbox_cls.failed_at.is_not(None))
                                .order_by(outbox_cls.id).limit(limit)))


def retry_dead(session: Session, outbox_cls, ids: list[int] | None = None) -> int:
    """Makes dead rows pending again (all of them when ``ids`` is None); returns how many. The caller
    commits. The last error stays on the row for the record. A re-driven row goes out before any later
    pending row of its key; one whose key has moved on since is delivered late, and consumers ignore it
    as stale (capability versions, the request state machine): see docs/outbox.md."""
    q = update(outbox_cls).where(outbox_cls.failed_at.is_not(None), outbox_cls.sent_at.is_(None))
    if ids is not None:
        q = q.where(outbox_cls.id.in_(ids))
    return session.execute(q.values(failed_at=None)).rowcount or 0


def outbox_counts(session: Session, outbox_cls) -> dict[str, int]:
    c = outbox_cls
    return {
        "pending": session.scalar(select(func.count()).where(c.sent_at.is_(None), c.failed_at.is_(None))) or 0,
        "dead": session.scalar(select(func.count()).where(c.failed_at.is_not(None))) or 0,
        "sent": session.scalar(select(func.count()).where(c.sent_at.is_not(None))) or 0,
    }
