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
