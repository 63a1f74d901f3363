"""A Kafka consumer loop with at-least-once delivery, idempotent handlers, and dead letters.

When offsets are committed: only after every record before them has been handled (the handler's database
transaction committed) or dead-lettered (the dead letter acknowledged by the broker). A crash before that
re-delivers the records; handlers de-duplicate on the envelope's event id
(metrofed.db.outbox.already_processed), so each effect happens once.

How a failure is treated is decided by metrofed.bus.classify: a transient one (database or broker
unavailable) makes the loop seek back to that record and retry it with backoff, in order, for as long as
it takes; a permanent one (undecodable, unknown event type, invalid, a constraint, a domain rule, a
``PermanentFailure`` from the handler) sends the record to the group's dead-letter topic and the loop moves
on. A partition waiting for a retry is paused, not the whole loop: the other partitions of the same
batch and of later polls keep moving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition
from opentelemetry.trace import Status, StatusCode

from metrofed.bus import tracing
from metrofed.bus.checks import check_id
from metrofed.bus.classify import classify
from metrofed.bus.dead_letter import DeadLetterWriter
from metrofed.bus.envelope import Decoded, unwrap
from metrofed.bus.reconnect import RECONNECT_SETTINGS
from metrofed.bus.security import KafkaSecurity

log = logging.getLogger(__name__)

# handler(record, decoded) -- decoded is None for a tombstone (null value).
Handler = Callable[[object, Decoded | None], None]


def make_consumer(bootstrap: str, group: str, client_id: str, topics: list[str], *, security: KafkaSecurity,
                  instance_id: str | None = None) -> KafkaConsumer:
    """``instance_id`` makes the member static (KIP-345): a restarted process with the same id takes its
    predecessor's place at once. Without it, a process killed between JoinGroup and SyncGroup leaves the
    coordinator waiting out the rebalance timeout before anyone may consume — minutes of a stalled inbox.
    Use it only where exactly one instance runs (a centre); replicas (gateways) stay dynamic."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        **security.client_kwargs(),
        group_id=group,
        group_instance_id=instance_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=200,
        # A dynamic member killed with the broker up is noticed after the session timeout; heartbeats at a
        # third of it. After a broker restart, members rejoin as soon as they reconnect (RECONNECT_SETTINGS).
        session_timeout_ms=10000,
        heartbeat_interval_ms=2000,
        max_poll_interval_ms=60000,  # also the rebalance timeout: handlers take milliseconds
        metadata_max_age_ms=30000,  # notice partition changes (and so rebalance) within 30 s, not 5 min
        **RECONNECT_SETTINGS,
    )
    # Join the group only once this client's metadata holds every topic: a leader that computes the
    # assignment for a topic it cannot see yet (created a moment ago) assigns nothing, and a static member
    # that rejoins later keeps that empty assignment.
    deadline = time.monotonic() + 30
    for topic in topics:
        while not consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                consumer.close()
                raise TimeoutError(f"topic {topic} not in the broker's metadata after 30 s")
            time.sleep(0.1)
    return consumer


def make_reader(bootstrap: str, client_id: str, *, security: KafkaSecurity, group: str | None = None,
                **config) -> KafkaConsumer:
    """A consumer that assigns partitions itself (no group membership): the catalog feed, dead-letter
    readers. With ``group`` it may still commit offsets under that group id (a cursor, e.g. of re-driven
    dead letters). Built here so that every Kafka client's connection settings live in one place."""
    return KafkaConsumer(bootstrap_servers=bootstrap, client_id=client_id, group_id=group,
                         enable_auto_commit=False, auto_offset_reset="earliest", **security.client_kwargs(),
                         **RECONNECT_SETTINGS, **config)


def event_type_of(record) -> str:
    for k, v in record.headers or ():
        if k == "metrofed-event-type" and v is not None:
            return v.decode()
    return ""


MAX_EVENT_ID = 64  # the processed_events column: checked here, before any database sees it


def check_envelope(envelope) -> None:
    """Cheap invariants every handler relies on, checked before the database is touched: a record that
    breaks them fails as ``invalid`` on every database alike."""
    check_id(envelope.event_id, "envelope.event_id", MAX_EVENT_ID)


@dataclass
class _Retry:
    """A partition waiting to retry the record at ``offset``."""

    offset: int
    attempts: int
    backoff: float
    resume_at: float = 0.0


class ConsumerLoop:
    """``dead_letters`` receives the records that can never be handled; without one (tools, tests of the
    loop alone) they are logged and skipped. ``dead_lettered`` counts them per reason code (read by
    operators' APIs). An exception the classifier does not know is retried ``max_unclassified_attempts``
    times before the record is dead-lettered as ``unclassified``."""

    def __init__(self, consumer: KafkaConsumer, handler: Handler, *, group: str,
                 parenting: tracing.Parenting = "child", name: str = "consumer",
                 dead_letters: DeadLetterWriter | None = None, max_unclassified_attempts: int = 8,
                 min_backoff: float = 0.2, max_backoff: float = 5.0,
                 consumer_factory: Callable[[], KafkaConsumer] | None = None, stall_seconds: float = 15.0):
        """``consumer_factory``: when polls have returned nothing for ``stall_seconds`` although a partition
        assigned and not paused has records past the consumer's position, the consumer is closed and a new
        one made (docs/failover.md: after a broker SIGKILL under load, a kafka-python 3.0.12 consumer now
        and then stays in its group, assigned, and never fetches again)."""
        self._consumer = consumer
        self._factory = consumer_factory
        self._stall = stall_seconds
        self._last_progress = time.monotonic()
        self.renewals = 0
        self._handler = handler
        self._group = group
        self._parenting = parenting
        self._dead_letters = dead_letters
        self._max_unclassified = max(1, max_unclassified_attempts)
        self._min_backoff, self._max_backoff = min_backoff, max_backoff
        self._retries: dict[TopicPartition, _Retry] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.handled = 0
        self.dead_lettered: Counter[str] = Counter()
        self.retried = 0

    def start(self) -> "ConsumerLoop":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)
        try:
            self._consumer.close(autocommit=False)
        except Exception:  # noqa: BLE001 - closing a consumer whose broker is gone
            log.warning("consumer close failed", exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._resume_due()
            try:
                batches = self._consumer.poll(timeout_ms=self._poll_timeout_ms())
            except Exception:  # noqa: BLE001 - broker unreachable: kafka-python reconnects by itself
                log.exception("poll failed")
                self._stop.wait(1.0)
                continue
            if batches:
                self._last_progress = time.monotonic()
            elif self._factory is not None and time.monotonic() - self._last_progress > self._stall:
                self._last_progress = time.monotonic()  # judged at most once per stall period
                if self._lagging():
                    self._renew()
                    continue
            if not batches and not self._consumer.assignment():
                self._stop.wait(0.2)  # not assigned (yet): poll returns at once; don't spin
                continue
            for tp, records in batches.items():
                if self._stop.is_set():
                    break
                try:
                    self._consume_partition(tp, records)
                except Exception:  # noqa: BLE001 - e.g. a rebalance took the partition during commit/seek
                    # Effects already committed stay (handlers de-duplicate); an uncommitted offset only
                    # means a redelivery later. The loop must never die while the service says SERVING.
                    log.exception("commit/seek failed on %s[%d]; continuing", tp.topic, tp.partition)
                    self._retries.pop(tp, None)

    def _lagging(self) -> bool:
        """Whether a partition assigned and not paused (in retry) has records this consumer has not fetched."""
        try:
            fetching = list(set(self._consumer.assignment()) - set(self._consumer.paused()))
            if not fetching:
                return False
            ends = self._consumer.end_offsets(fetching)
            return any(self._consumer.position(tp) < ends.get(tp, 0) for tp in fetching)
        except Exception:  # noqa: BLE001 - broker away: not the wedge this looks for
            log.debug("lag check failed", exc_info=True)
            return False

    def _renew(self) -> None:
        log.warning("consumer of group %s fetched nothing for %.0fs while records wait; making a new one",
                    self._group, self._stall)
        try:
            fresh = self._factory()  # first: if this fails, the old one is kept for the next try
        except Exception:  # noqa: BLE001 - the broker still away: the next stall period tries again
            log.exception("could not make a new consumer")
            return
        old, self._consumer = self._consumer, fresh
        self._retries.clear()  # the old client's paused partitions: the new one starts from the commits
        self.renewals += 1
        try:  # a static member's successor has taken its place already (same group.instance.id)
            old.close(autocommit=False, timeout_ms=2000)
        except Exception:  # noqa: BLE001 - closing a wedged client
            log.warning("closing the wedged consumer failed", exc_info=True)

    def _poll_timeout_ms(self) -> int:
        waiting = [r.resume_at for r in self._retries.values() if r.resume_at]
        if not waiting:
            return 200
        soonest = min(waiting) - time.monotonic()
        return int(min(200, max(10, soonest * 1000)))

    def _resume_due(self) -> None:
        now = time.monotonic()
        for tp, retry in list(self._retries.items()):
            if retry.resume_at and retry.resume_at <= now:
                retry.resume_at = 0.0
                try:
                    self._consumer.resume(tp)
                except Exception:  # noqa: BLE001 - no longer assigned to us (rebalanced away)
                    self._retries.pop(tp, None)

    def _consume_partition(self, tp: TopicPartition, records) -> None:
        """Handles records in order up to the first one that must be retried; commits what is done and
        pauses the partition at that record until its backoff has passed."""
        last = None
        retry_at = None
        for record in records:
            if self._stop.is_set():
                break
            if not self._process(tp, record):
                retry_at = record.offset
                break
            last = record.offset
        if last is not None:
            self._consumer.commit({tp: OffsetAndMetadata(last + 1, None, -1)})
            retry = self._retries.get(tp)
            if retry is not None and retry.offset <= last:
                del self._retries[tp]
        if retry_at is not None:
            self._consumer.seek(tp, retry_at)
            retry = self._retries[tp]
            retry.resume_at = time.monotonic() + retry.backoff
            self._consumer.pause(tp)
        elif last is not None and last != records[-1].offset:
            self._consumer.seek(tp, last + 1)  # stopping: nothing after ``last`` was handled

    def _attempt(self, tp: TopicPartition, offset: int) -> _Retry:
        retry = self._retries.get(tp)
        if retry is None or retry.offset != offset:
            retry = self._retries[tp] = _Retry(offset, 0, self._min_backoff / 2)
        retry.attempts += 1
        retry.backoff = min(retry.backoff * 2, self._max_backoff)
        return retry

    def _process(self, tp: TopicPartition, record) -> bool:
        """True when the record is done with (handled or dead-lettered); False: retry it later."""
        event_type = event_type_of(record)
        event_id = ""
        with tracing.consumer_span(record, self._group, self._parenting, event_type) as span:
            try:
                if record.value is None:
                    self._handler(record, None)
                else:
                    decoded = unwrap(record.value)
                    event_id = decoded.envelope.event_id
                    span.set_attribute("messaging.message.id", event_id[:MAX_EVENT_ID])
                    check_envelope(decoded.envelope)
                    self._handler(record, decoded)
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                verdict = classify(exc)
                retry = self._attempt(tp, record.offset)
                if verdict.kind == "transient" or (verdict.kind == "unclassified"
                                                   and retry.attempts < self._max_unclassified):
                    self.retried += 1
                    span.record_exception(exc)
                    span.set_attribute("metrofed.retry.attempt", retry.attempts)
                    span.set_status(Status(StatusCode.ERROR, f"{verdict.kind} ({verdict.code}): will retry"))
                    log.warning("%s failure at %s[%d]@%d (attempt %d), retrying in %.1fs: %s", verdict.kind,
                                tp.topic, tp.partition, record.offset, retry.attempts, retry.backoff,
                                verdict.reason, exc_info=verdict.kind == "unclassified")
                    return False
                return self._dead_letter(record, verdict.code, verdict.reason, event_id, span)
        self.handled += 1
        return True

    def _dead_letter(self, record, code: str, reason: str, event_id: str, span) -> bool:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if self._dead_letters is None:
            log.error("no dead-letter topic for group %s: dropping %s (%s: %s)", self._group, where, code, reason)
        else:
            try:
                self._dead_letters.write(record, code, reason, event_id)
            except Exception as exc:  # noqa: BLE001 - the dead letter is not durable: retry the record
                self.retried += 1
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, "dead-letter write failed: will retry"))
                log.warning("could not dead-letter %s (%s); will retry", where, exc)
                return False
            span.set_attribute("metrofed.dlq.topic", self._dead_letters.topic)
        self.dead_lettered[code] += 1
        span.set_attribute("metrofed.dead_lettered", True)
        span.set_attribute("metrofed.dlq.reason_code", code)
        span.set_attribute("metrofed.dlq.reason", reason)
        span.set_status(Status(StatusCode.ERROR, f"dead-lettered ({code}): {reason}"))
        log.warning("dead-lettered %s (%s): %s", where, code, reason)
        return True
