"""Feeds the federated catalog from the compacted centres and capabilities topics.

At start (and on ``request_rebuild``) it reads both topics from offset 0 into a fresh CatalogBuilder
while the current snapshot keeps serving, and installs the result with one swap once it has caught up
with the end offsets taken when the rebuild began: the catalog is never empty or half-built. It then
applies live events one by one (revisions replace, tombstones remove).

No consumer group: every gateway replica reads every record, and the log, not a committed offset, is
the source of truth. Consumer spans are *links* to the producer (broadcast facts; see bus/tracing.py).

Poison (an undecodable record, an event type this build does not know, an invalid capability or centre,
a tombstone with a malformed key) is rejected: it never reaches the catalog, and neither stops a rebuild
nor live updates. Each rejection is counted per reason code, the last ``keep_rejections`` are kept for
operators, and the record is dead-lettered to ``metrofed.dlq.gateway-catalog.v1``. Because the feed
re-reads the compacted topics from offset 0 at every start, it would meet the same poison again each
time: before each rebuild it reads the origins (topic, partition, offset) already in its dead-letter
topic and dead-letters only new ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from metrofed.bus import topics, tracing
from metrofed.bus.admin import ensure_topics
from metrofed.bus.consumer import event_type_of, make_reader
from metrofed.bus.codec import decode_catalog_event
from metrofed.bus.dead_letter import DeadLetter, DeadLetterWriter
from metrofed.bus.envelope import UnknownEvent
from metrofed.bus.failures import PermanentFailure
from metrofed.bus.signed import decode_envelope, verify_envelope, verify_tombstone, withdrawn_version
from metrofed.bus.reconnect import RECONNECT_SETTINGS
from metrofed.bus.security import KafkaSecurity
from metrofed.domain.capability import Capability, DomainError
from metrofed.domain.catalog import Catalog, CatalogBuilder, Stamp
from metrofed.domain.routing import gc_paused
from metrofed.trust.signing import Verifier

log = logging.getLogger(__name__)
TOPICS = (topics.CENTRES, topics.CAPABILITIES)

# Consumer settings for catching up from offset 0 (bench.catalog_rebuild uses these; docs/catalog.md has
# the figures). CRC checks stay on: with the crc32c C extension installed they cost ~1 µs a record.
CONSUMER_CONFIG: dict = {
    "max_poll_records": 5000,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
    "check_crcs": True,
}


@dataclass(frozen=True)
class Rejection:
    """A catalog record the feed refused, as an operator sees it."""

    topic: str
    partition: int
    offset: int
    key: str
    code: str
    reason: str
    at: str


def check_signed(verifier: Verifier, record) -> None:
    """Is a catalog record signed by the centre it speaks for? The key names that centre (the payload is
    checked against the key after decoding). Raises ``PermanentFailure`` when not."""
    if record.value is None:
        producer = verify_tombstone(verifier, record)
    else:
        producer = verify_envelope(verifier, record.topic, record.key, decode_envelope(record.value))
    key_centre = (record.key or b"").decode(errors="replace").split("/", 1)[0]
    if producer != key_centre:
        raise PermanentFailure("unauthorised", f"centre {producer[:60]!r} wrote under the key of {key_centre[:60]!r}")


class CatalogFeed:
    def __init__(self, bootstrap: str, catalog: Catalog, *, security: KafkaSecurity,
                 client_id: str = "gateway-catalog", topic_replication: int = 1,
                 dead_letters: DeadLetterWriter | None = None, keep_rejections: int = 100,
                 verifier: Verifier | None = None):
        self._bootstrap = bootstrap
        self._security = security
        self._client_id = client_id
        self.catalog = catalog
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._rebuild.set()  # the first thing the thread does
        self._thread = threading.Thread(target=self._run, name="catalog-feed", daemon=True)
        self.events_applied = 0
        self.last_rebuild_seconds = 0.0
        self.last_rebuild_events = 0
        self.rebuilds = 0  # completed and installed
        self._replication = topic_replication
        self._inboxes_ensured: set[str] = set()
        self._inboxes_pending: set[str] = set()
        self._dead_letters = dead_letters
        self._dead_lettered: set[tuple[str, int, int]] = set()  # origins already in the DLQ
        self._dlq_exists = False  # a send to a missing topic would block the feed for max_block_ms
        self.rejected: Counter[str] = Counter()  # per reason code, since this process started
        self.rejections: deque[Rejection] = deque(maxlen=keep_rejections)
        self.dead_letter_failures = 0
        # Signed events (docs/security.md): None only for benchmarks of the bare path (METROFED_INSECURE).
        self._verifier = verifier

    @property
    def skipped(self) -> int:
        return sum(self.rejected.values())

    def start(self) -> "CatalogFeed":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def request_rebuild(self) -> None:
        self._rebuild.set()

    # ---- the loop -------------------------------------------------------------------------------------

    def _consumer(self) -> tuple[KafkaConsumer, list[TopicPartition]]:
        consumer = make_reader(self._bootstrap, self._client_id, security=self._security, **CONSUMER_CONFIG)
        parts = []
        deadline = time.monotonic() + 30
        for topic in TOPICS:
            ids = consumer.partitions_for_topic(topic)
            while not ids:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topic {topic} has no partitions (not created?)")
                time.sleep(0.2)
                ids = consumer.partitions_for_topic(topic)
            parts += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(parts)
        return consumer, parts

    def _run(self) -> None:
        consumer = None
        while not self._stop.is_set():
            try:
                if self._rebuild.is_set():
                    self._rebuild.clear()
                    fresh = self._rebuild_from_zero()
                    if consumer is not None:
                        consumer.close()
                    consumer = fresh
                    continue
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        self._apply_live(record)
            except Exception:  # noqa: BLE001 - broker hiccup: start over from zero, keep serving
                log.exception("catalog feed failed; rebuilding in 1s")
                self._stop.wait(1.0)
                self._rebuild.set()
        if consumer is not None:
            consumer.close()

    def _rebuild_from_zero(self) -> KafkaConsumer:
        started = time.monotonic()
        try:
            self._load_dead_lettered()
        except Exception:  # noqa: BLE001 - the catalog matters more than its dead letters
            # Without knowing what is in the DLQ, writing would duplicate at every restart: reject (count,
            # keep, log) only, until a later rebuild can read it.
            self._dlq_exists = False
            log.exception("could not read %s; rejected records are logged, not dead-lettered, until the next "
                          "rebuild", self._dead_letters.topic if self._dead_letters else "")
        consumer, parts = self._consumer()
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        builder = self.catalog.rebuild()
        n = 0
        apply = self._apply
        # the collector paused while the catch-up decodes and keeps a million acyclic objects: each gen-2
        # pass would traverse every capability decoded so far
        with gc_paused():
            while not self._stop.is_set():
                if all(consumer.position(tp) >= end[tp] for tp in parts):
                    break
                for tp, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        apply(builder, record)
                    n += len(records)
        if self._stop.is_set():  # stopped mid catch-up: a half-read log must never be installed
            return consumer
        # freeze_gc: the installed snapshot leaves the collector's view (searches ~340 -> ~20 ms p50 at 100k)
        self.catalog.install(builder, freeze_gc=True)
        self._ensure_inboxes()
        self.rebuilds += 1
        self.last_rebuild_seconds = time.monotonic() - started
        self.last_rebuild_events = n
        log.info("catalog rebuilt from offset 0: %d events in %.2fs, %d capabilities", n,
                 self.last_rebuild_seconds, len(self.catalog.current()))
        return consumer

    def _apply_live(self, record) -> None:
        with tracing.consumer_span(record, "gateway-catalog", "link", event_type_of(record)):
            self._apply(self.catalog, record)
        self.events_applied += 1
        if self._inboxes_pending:
            self._ensure_inboxes()

    def _ensure_inboxes(self) -> None:
        """Every centre in the catalog has its inbox topic before anything is routed there.

        A centre creates its own at start; this covers a topic lost or never made (a centre registered by
        hand, a cluster rebuilt), which would otherwise stall the gateway's outbox relay on that row.
        """
        pending = sorted(self._inboxes_pending)
        if not pending:
            return
        try:
            ensure_topics(self._bootstrap, [topics.inbox_spec(c, self._replication) for c in pending],
                          security=self._security)
        except Exception:  # noqa: BLE001 - retried at the next centre event or rebuild
            log.exception("could not ensure inbox topics for %s", pending)
            return
        self._inboxes_ensured.update(pending)
        self._inboxes_pending.difference_update(pending)

    def _apply(self, target: Catalog | CatalogBuilder, record) -> None:
        stamp = Stamp(record.timestamp, record.partition, record.offset)
        if self._verifier is not None:
            try:
                check_signed(self._verifier, record)
            except PermanentFailure as failure:
                self._reject(record, failure.code, failure.reason)
                return
        if record.value is None:
            key = (record.key or b"").decode(errors="replace")
            if record.topic == topics.CAPABILITIES and "/" in key:
                centre_id, capability_id = key.split("/", 1)
                try:
                    withdrawn = withdrawn_version(record)
                except PermanentFailure as failure:
                    self._reject(record, failure.code, failure.reason)
                    return
                target.remove_capability(centre_id, capability_id, stamp, version=withdrawn)
            elif record.topic == topics.CENTRES and key:
                target.remove_centre(key, stamp)
            else:
                self._reject(record, "invalid", f"key: a tombstone keyed {key[:100]!r} names nothing in the catalog")
            return
        try:
            obj = decode_catalog_event(record.value)
        except UnknownEvent as exc:
            self._reject(record, "unknown-type", f"event type {str(exc)!r} is unknown to this build")
            return
        except DomainError as exc:
            self._reject(record, "undecodable" if exc.field.startswith("envelope") else "invalid", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - whatever one record does, the catalog keeps going
            self._reject(record, "unclassified", f"{type(exc).__name__}: {exc}")
            return
        key = (record.key or b"").decode(errors="replace")
        if (obj.key if type(obj) is Capability else obj.centre_id) != key:
            self._reject(record, "unauthorised", f"key: the payload of {key[:60]!r} names another record")
            return
        if type(obj) is Capability:
            if not target.upsert_capability(obj, stamp) and obj.version < target.version_of(obj.key):
                self._reject(record, "stale-version",
                             f"version {obj.version} of {obj.key} is older than the one held (a replay?)")
        else:
            target.upsert_centre(obj, stamp)
            if obj.centre_id not in self._inboxes_ensured:
                self._inboxes_pending.add(obj.centre_id)

    # ---- poison ---------------------------------------------------------------------------------------

    def _reject(self, record, code: str, reason: str) -> None:
        reason = reason[:1000]
        self.rejected[code] += 1
        self.rejections.append(Rejection(record.topic, record.partition, record.offset,
                                         (record.key or b"").decode("utf-8", "replace")[:200], code, reason,
                                         dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
        log.warning("catalog rejected %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset,
                    code, reason)
        origin = (record.topic, record.partition, record.offset)
        if self._dead_letters is None or not self._dlq_exists or origin in self._dead_lettered:
            return
        self._dead_lettered.add(origin)
        try:
            future = self._dead_letters.send(record, code, reason)
        except Exception:  # noqa: BLE001 - not dead-lettered now: the next rebuild tries again
            self._dead_lettered.discard(origin)
            self.dead_letter_failures += 1
            log.warning("could not dead-letter %s", origin, exc_info=True)
            return

        def failed(exc, origin=origin):
            self._dead_lettered.discard(origin)
            self.dead_letter_failures += 1
            log.warning("could not dead-letter %s: %s", origin, exc)

        # Asynchronous: nothing is committed past the record (the feed has no offsets), so the catalog
        # need not wait for the broker; a failed write is retried when the next rebuild meets the record.
        future.add_errback(failed)

    def _load_dead_lettered(self) -> None:
        """The origins already in the feed's dead-letter topic, so that a rebuild does not write them again."""
        if self._dead_letters is None:
            return
        reader = make_reader(self._bootstrap, f"{self._client_id}-dlq", security=self._security)
        try:
            ids = reader.partitions_for_topic(self._dead_letters.topic)
            if not ids:
                log.warning("dead-letter topic %s does not exist; rejected records will only be logged until it "
                            "does", self._dead_letters.topic)
                self._dlq_exists = False
                return
            self._dlq_exists = True
            parts = [TopicPartition(self._dead_letters.topic, p) for p in sorted(ids)]
            reader.assign(parts)
            reader.seek_to_beginning(*parts)
            end = reader.end_offsets(parts)
            deadline = time.monotonic() + 30
            while not all(reader.position(tp) >= end[tp] for tp in parts):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {self._dead_letters.topic} took more than 30 s")
                for records in reader.poll(timeout_ms=200).values():
                    self._dead_lettered.update(DeadLetter.from_record(r).origin for r in records)
        finally:
            reader.close()
