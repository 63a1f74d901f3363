"""The gateway's catalog feed against the real broker: catch-up from offset 0, live revisions and
tombstones, and a rebuild during which readers keep seeing the last complete catalog."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from gateway.catalog_feed import CatalogFeed
from metrofed.bus import topics
from metrofed.bus.producer import make_producer
from metrofed.bus.envelope import wrap
from metrofed.domain.catalog import Catalog
from metrofed.protoconv import capability_to_proto, centre_to_proto
from metrofed.seed import load_seed
from metrofed.v1 import events_pb2

pytestmark = pytest.mark.integration


def publish_centre(producer, centre_id: str, caps) -> None:
    seed = load_seed()[0]
    profile = seed.profile.__class__(**{**{f: getattr(seed.profile, f) for f in seed.profile.__slots__},
                                        "centre_id": centre_id})
    producer.send(topics.CENTRES, key=centre_id.encode(),
                  value=wrap(events_pb2.CentreRegistered(profile=centre_to_proto(profile)), centre_id).SerializeToString())
    for cap in caps:
        cap = cap.__class__(**{**{f: getattr(cap, f) for f in cap.__slots__}, "centre_id": centre_id})
        producer.send(topics.CAPABILITIES, key=cap.key.encode(),
                      value=wrap(events_pb2.CapabilityPublished(capability=capability_to_proto(cap)),
                                 centre_id).SerializeToString())
    producer.flush()


def mine(catalog: Catalog, centre_id: str) -> set[str]:
    return {c.capability_id for c in catalog.current().capabilities_of(centre_id)}


def wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_feed_catches_up_applies_live_events_and_rebuilds_without_a_gap(kafka, kafka_admin):
    from metrofed.bus import acls

    centre_id = f"it-feed-{uuid.uuid4().hex[:8]}"
    caps = load_seed()[0].capabilities
    producer = make_producer(kafka.bootstrap, "it-feed", security=kafka_admin)
    publish_centre(producer, centre_id, caps)

    # The feed runs as the gateway, with the gateway's ACLs only (it creates the inbox below with them).
    acls.grant_gateway(kafka.bootstrap, kafka_admin)
    catalog = Catalog()
    feed = CatalogFeed(kafka.bootstrap, catalog, security=kafka.security_for("gateway"), client_id="it-feed").start()
    try:
        assert catalog.wait_ready(60)
        assert mine(catalog, centre_id) == {c.capability_id for c in caps}
        assert catalog.freshness(centre_id) is not None
        # The gateway makes sure a registered centre's inbox exists before routing anything there.
        from kafka import KafkaConsumer
        probe = KafkaConsumer(bootstrap_servers=kafka.bootstrap, **kafka_admin.client_kwargs())
        try:
            assert wait(lambda: topics.inbox(centre_id) in probe.topics(), 10)
        finally:
            probe.close()

        # A tombstone removes a capability from the live catalog.
        gone = caps[0]
        producer.send(topics.CAPABILITIES, key=f"{centre_id}/{gone.capability_id}".encode(), value=None)
        producer.flush()
        assert wait(lambda: gone.capability_id not in mine(catalog, centre_id))

        # Rebuild from offset 0 while a reader samples: never empty, same content afterwards.
        sizes: list[int] = []
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                sizes.append(len(catalog.current()))

        t = threading.Thread(target=reader)
        t.start()
        assert feed.rebuilds == 1
        feed.request_rebuild()
        rebuilt = wait(lambda: feed.rebuilds == 2, 60)
        stop.set()
        t.join()
        assert rebuilt
        assert sizes and min(sizes) > 0, "a reader saw an empty catalog during the rebuild"
        assert mine(catalog, centre_id) == {c.capability_id for c in caps[1:]}, "the tombstone must survive a rebuild"
    finally:
        feed.stop()
        producer.close()


# ---- poison on the catalog topics ---------------------------------------------------------------------------

def test_poison_is_rejected_counted_and_dead_lettered_once_across_restarts(kafka, kafka_admin, topic_reader):
    """Garbage, an unknown event type, a corrupt payload, an invalid capability or centre, a tombstone naming
    nothing: neither the rebuild nor live updates stop; each record is in the feed's dead-letter topic once,
    even after the feed restarts and meets it again from offset 0."""
    from metrofed.bus import acls
    from metrofed.bus.admin import ensure_topics
    from metrofed.bus.dead_letter import DeadLetter, DeadLetterWriter

    # As the gateway: its identity and ACLs create, read and write its dead-letter topic.
    acls.grant_gateway(kafka.bootstrap, kafka_admin)
    gateway = kafka.security_for("gateway")
    ensure_topics(kafka.bootstrap, [topics.dlq_spec(topics.CATALOG_GROUP)], security=gateway)
    gateway_producer = make_producer(kafka.bootstrap, "it-feed-poison-gw", security=gateway)
    dlq = topic_reader(topics.dlq(topics.CATALOG_GROUP))
    centre_id = f"it-poison-{uuid.uuid4().hex[:8]}"
    caps = load_seed()[0].capabilities[:3]
    producer = make_producer(kafka.bootstrap, "it-feed-poison", security=kafka_admin)
    tag = uuid.uuid4().hex[:8]
    bad_cap = capability_to_proto(caps[0])
    bad_cap.centre_id, bad_cap.capability_id = centre_id, "X" * 61
    bad_centre = centre_to_proto(load_seed()[0].profile)
    bad_centre.centre_id = "not a centre id!"
    poison = [  # (topic, key, value, reason code)
        (topics.CAPABILITIES, f"{centre_id}/garbage-{tag}", b"\xff\xfe garbage", "undecodable"),
        (topics.CAPABILITIES, f"{centre_id}/new-{tag}",
         events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v2.CapabilityPublished",
                             payload=b"\x08\x01").SerializeToString(), "unknown-type"),
        (topics.CAPABILITIES, f"{centre_id}/corrupt-{tag}",
         events_pb2.Envelope(event_id=str(uuid.uuid4()), event_type="metrofed.v1.CapabilityPublished",
                             payload=b"\x0a\x05ab").SerializeToString(), "undecodable"),
        (topics.CAPABILITIES, f"{centre_id}/long-{tag}",
         wrap(events_pb2.CapabilityPublished(capability=bad_cap), centre_id).SerializeToString(), "invalid"),
        (topics.CENTRES, f"bad-centre-{tag}",
         wrap(events_pb2.CentreRegistered(profile=bad_centre), "x").SerializeToString(), "invalid"),
        (topics.CAPABILITIES, f"no-slash-{tag}", None, "invalid"),
    ]
    origins = {}
    for topic, key, value, code in poison:
        meta = producer.send(topic, key=key.encode(), value=value).get(timeout=15)
        origins[(topic, meta.partition, meta.offset)] = code
    publish_centre(producer, centre_id, caps)

    def mine_in_dlq(letters):
        return {d.origin: d.reason_code for d in letters if d.origin in origins}

    # The dead-letter topic is the gateway replicas' common one: another gateway on this broker (the e2e
    # federation, when the suites share it) may dead-letter a record first — with its own verdict, e.g.
    # "signature" for these unsigned records — and then this feed, which reads the topic, adds none. So the
    # topic is checked for presence and no duplicates; the feed's own verdicts are in feed.rejections.

    catalog = Catalog()
    feed = CatalogFeed(kafka.bootstrap, catalog, security=gateway, client_id="it-feed-poison",
                       dead_letters=DeadLetterWriter(gateway_producer, topics.CATALOG_GROUP),
                       keep_rejections=1000).start()
    try:
        assert catalog.wait_ready(60)
        assert mine(catalog, centre_id) == {c.capability_id for c in caps}  # the rebuild went past the poison
        rejected = {(r.topic, r.partition, r.offset): r for r in feed.rejections}
        assert {o: rejected[o].code for o in origins} == origins
        assert all(rejected[o].reason for o in origins)
        wait(lambda: len(mine_in_dlq(DeadLetter.from_record(r) for r in dlq.settle(seconds=0.2))) == len(origins), 15)
        letters = [DeadLetter.from_record(r) for r in dlq.records]
        assert mine_in_dlq(letters).keys() == origins.keys()
        assert all(d.group == topics.CATALOG_GROUP and d.reason for d in letters if d.origin in origins)

        # Live: a poison record, then a good capability: the live feed goes past it.
        meta = producer.send(topics.CAPABILITIES, key=f"{centre_id}/live-{tag}".encode(),
                             value=b"\x00 live garbage").get(timeout=15)
        origins[(topics.CAPABILITIES, meta.partition, meta.offset)] = "undecodable"
        removed = caps[0]
        producer.send(topics.CAPABILITIES, key=f"{centre_id}/{removed.capability_id}".encode(), value=None)
        producer.flush()
        assert wait(lambda: removed.capability_id not in mine(catalog, centre_id))
        assert wait(lambda: len(mine_in_dlq(DeadLetter.from_record(r) for r in dlq.settle(seconds=0.2)))
                    == len(origins), 15)
        dlq.settle(seconds=1.0)
        before = [DeadLetter.from_record(r).origin for r in dlq.records]
        before = {o: before.count(o) for o in origins}
    finally:
        feed.stop()

    # A restart meets every poison record again from offset 0: rejected again, dead-lettered not again.
    catalog2 = Catalog()
    feed2 = CatalogFeed(kafka.bootstrap, catalog2, security=gateway, client_id="it-feed-poison-2",
                        dead_letters=DeadLetterWriter(gateway_producer, topics.CATALOG_GROUP),
                        keep_rejections=1000).start()
    try:
        assert catalog2.wait_ready(60)
        assert {(r.topic, r.partition, r.offset) for r in feed2.rejections} >= set(origins)
        dlq.settle(seconds=2.0)
        per_origin = [DeadLetter.from_record(r).origin for r in dlq.records]
        assert {o: per_origin.count(o) for o in origins} == before  # nothing dead-lettered twice by a restart
        assert all(n >= 1 for n in before.values())
    finally:
        feed2.stop()
        producer.close()
        gateway_producer.close()
