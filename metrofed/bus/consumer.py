"""A Kafka consumer loop with at-least-once delivery and idempotent handlers.

When offsets are committed: only after every record of a polled batch has been handled *and* the
handler's database transaction has committed. A crash before that re-delivers the records; handlers
de-duplicate on the envelope's event id (metrofed.db.outbox.already_processed), so each effect happens
once. A handler that fails for a transient reason (database down) makes the loop seek back to that
record and retry with backoff; it is never skipped. A record that cannot be decoded, or whose event
type this build does not know, is logged and skipped: retrying would not change it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from google.protobuf.message import DecodeError
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from metrofed.bus import tracing
from metrofed.bus.security import KafkaSecurity
from metrofed.bus.envelope import Decoded, UnknownEvent, unwrap
from metrofed.bus.reconnect import RECONNECT_SETTINGS

log = logging.getLogger(__name__)

# A failed poll, commit or handler is retried at most this long after: longer only delays recovery once the
# broker or database is back (bench/recovery.py), and a retry costs one poll.
MAX_BACKOFF_SECONDS = 1.0

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


def event_type_of(record) -> str:
    for k, v in record.headers or ():
        if k == "metrofed-event-type" and v is not None:
            return v.decode()
    return ""


class ConsumerLoop:
    def __init__(self, consumer: KafkaConsumer, handler: Handler, *, group: str,
                 parenting: tracing.Parenting = "child", name: str = "consumer",
                 consumer_factory: Callable[[], KafkaConsumer] | None = None, stall_seconds: float = 15.0):
        """``consumer_factory``: when polls have returned nothing for ``stall_seconds`` although an assigned
        partition has records past the consumer's position, the consumer is closed and a new one made
        (docs/failover.md: after a broker SIGKILL under load, a kafka-python 3.0.12 consumer now and then
        stays in its group, assigned, and never fetches again)."""
        self._consumer = consumer
        self._factory = consumer_factory
        self._stall = stall_seconds
        self._last_progress = time.monotonic()
        self.renewals = 0
        self._handler = handler
        self._group = group
        self._parenting = parenting
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.handled = 0

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
        backoff = 0.2
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=200)
            except Exception:  # noqa: BLE001 - broker unreachable: kafka-python reconnects by itself
                log.exception("poll failed")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
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
            failed = False
            for tp, records in batches.items():
                try:
                    if failed:  # not handled this round: rewind so the next poll returns them again
                        self._consumer.seek(tp, records[0].offset)
                        continue
                    done = self._handle_partition(tp, records)
                    if done is not None:
                        self._consumer.commit({tp: OffsetAndMetadata(done + 1, None, -1)})
                    if done != records[-1].offset:
                        self._consumer.seek(tp, records[0].offset if done is None else done + 1)
                        failed = True
                except Exception:  # noqa: BLE001 - e.g. a rebalance took the partition during commit/seek
                    # Effects already committed stay (handlers de-duplicate); an uncommitted offset only
                    # means a redelivery later. The loop must never die while the service says SERVING.
                    log.exception("commit/seek failed on %s[%d]; continuing", tp.topic, tp.partition)
                    failed = True
            if failed:
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            else:
                backoff = 0.2

    def _lagging(self) -> bool:
        """Whether an assigned partition has records this consumer has not fetched."""
        try:
            assigned = list(self._consumer.assignment())
            if not assigned:
                return False
            ends = self._consumer.end_offsets(assigned)
            return any(self._consumer.position(tp) < ends.get(tp, 0) for tp in assigned)
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
        self.renewals += 1
        try:  # a static member's successor has taken its place already (same group.instance.id)
            old.close(autocommit=False, timeout_ms=2000)
        except Exception:  # noqa: BLE001 - closing a wedged client
            log.warning("closing the wedged consumer failed", exc_info=True)

    def _handle_partition(self, tp: TopicPartition, records) -> int | None:
        """Handles records in order; returns the offset of the last one handled (None if none)."""
        last = None
        for record in records:
            if self._stop.is_set():
                break
            try:
                self.handle_record(record)
            except Exception:  # noqa: BLE001 - transient: retried from this record
                log.exception("handler failed at %s[%d]@%d; will retry", tp.topic, tp.partition, record.offset)
                return last
            last = record.offset
        return last

    def handle_record(self, record) -> None:
        event_type = event_type_of(record)
        with tracing.consumer_span(record, self._group, self._parenting, event_type) as span:
            if record.value is None:
                self._handler(record, None)
            else:
                try:
                    decoded = unwrap(record.value)
                except (UnknownEvent, DecodeError) as exc:
                    log.warning("skipping %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc)
                    span.set_attribute("metrofed.skipped", repr(exc))
                    return
                span.set_attribute("messaging.message.id", decoded.envelope.event_id)
                self._handler(record, decoded)
        self.handled += 1
