"""Catalog rebuild rate from a real Kafka broker: consume a capabilities topic from offset 0 into a
``CatalogBuilder`` until caught up, then index. Goal: >= 20k events/s.

    .venv/bin/python -m bench.catalog_rebuild                 # N = 100k events
    .venv/bin/python -m bench.catalog_rebuild --events 20000
    .venv/bin/python -m bench.catalog_rebuild --quick         # CI smoke: 10k events

Starts a private KRaft broker (``infra.devstack.kafka.KafkaBroker``, jars from Maven Central on first
use), creates a compacted 6-partition topic like ``metrofed.capabilities.v1``, produces N events keyed
``centre_id/capability_id`` (~96 % publications, ~3 % revisions, ~1 % withdrawals as null-value tombstones),
then times the consumer from offset 0: poll -> decode -> builder, until every partition reaches the end
offset seen at start, then ``build()``. The broker is stopped at the end, always. The consumer uses the
gateway catalog feed's settings (``gateway.catalog_feed.CONSUMER_CONFIG``, overridable with
``--consumer key=value``) and, like the feed, pauses the cyclic GC during the catch-up (``--no-gc-pause``).

The broker is secured as everywhere (TLS with client certificates, ACLs; the bench's clients use the admin
identity); ``--insecure`` runs it in PLAINTEXT to measure what TLS costs.

Events are encoded and decoded exactly as on the bus (``metrofed.bus.codec``: the centres' envelope, the
gateway feed's decode path), and signed as on the bus: each of the 60 synthetic centres is enrolled in a
throwaway trust home and signs its own records in relay batches of ``--seal-batch`` (default 100; a live
centre's relay signs what one round sends, 1–500 records); the rebuild verifies every record with the
feed's own check (``gateway.catalog_feed.check_signed``). ``--unsigned`` measures the path without seals.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.synthetic import make_capabilities, make_centres
from metrofed.bus.codec import decode_capability, encode_capability
from metrofed.bus.security import KafkaSecurity
from metrofed.domain.capability import Capability
from metrofed.domain.catalog import CatalogBuilder, Stamp

TOPIC = "bench.capabilities.v1"
PARTITIONS = 6
GOAL_EVENTS_PER_S = 20_000


class Codec:
    name = "metrofed.bus.codec (Envelope(CapabilityPublished), the gateway feed's decode path)"
    encode = staticmethod(encode_capability)
    decode = staticmethod(decode_capability)


def _events(n: int):
    """(key, capability or None) in log order: publications, then revisions and withdrawals mixed in."""
    centres = make_centres(60)
    n_pub = int(n * 0.96)
    caps = make_capabilities(n_pub, centres)
    out: list[tuple[str, Capability | None]] = [(c.key, c) for c in caps]
    rest = n - n_pub
    for j in range(rest):
        c = caps[(j * 7919) % len(caps)]
        if j % 4 == 3:
            out.append((c.key, None))  # withdrawal (tombstone)
        else:
            fields = {f: getattr(c, f) for f in c.__slots__}
            fields.update(version=c.version + 1 + j, lead_time_days=c.lead_time_days + 1)
            out.append((c.key, Capability(**fields)))
    return out


def _create_topic(bootstrap: str, security: KafkaSecurity) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin", **security.client_kwargs())
    try:
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1, topic_configs={
            "cleanup.policy": "compact", "min.insync.replicas": "1", "segment.ms": "3600000"})])
        admin.wait_for_topics([TOPIC], timeout_ms=30_000)
    finally:
        admin.close()


def seal(events, codec: Codec, home, batch: int) -> list[tuple[str, bytes | None, list]]:
    """Each centre signs its own records, ``batch`` at a time, as its outbox relay would."""
    import uuid

    from metrofed.bus.envelope import WITHDRAWN
    from metrofed.bus.signed import H_EVENT_ID, H_EVENT_TYPE, seal_batch
    from metrofed.trust.signing import Signer

    items, by_centre = [], {}
    for i, (key, cap) in enumerate(events):
        if cap is None:
            event_id, event_type, value = str(uuid.uuid4()), WITHDRAWN, None
        else:
            value = codec.encode(cap)
            event_id, event_type = "", ""
        items.append((key, value, [] if value is not None else
                      [(H_EVENT_ID, event_id.encode()), (H_EVENT_TYPE, event_type.encode())]))
        by_centre.setdefault(key.split("/", 1)[0], []).append((i, event_id, event_type))
    out = list(items)
    for centre, members in by_centre.items():
        party = f"centre-{centre}"
        home.enrol(party, "centre")
        signer = Signer.from_file(party, home.signing_key_file(party))
        for j in range(0, len(members), batch):
            chunk = members[j:j + batch]
            sealed = seal_batch(signer, [(TOPIC, items[i][0], items[i][1], eid, ety, 0, None)
                                         for i, eid, ety in chunk])
            for (i, _e, _t), (value, headers) in zip(chunk, sealed):
                out[i] = (items[i][0], value, items[i][2] + headers)
    return out


def produce(bootstrap: str, records, codec: Codec, security: KafkaSecurity) -> float:
    from kafka import KafkaProducer

    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024,
                         max_request_size=8 * 1024 * 1024, **security.client_kwargs())
    t = time.perf_counter()
    try:
        for key, value, headers in records:
            prod.send(TOPIC, key=key.encode(), value=value, headers=headers)
        prod.flush(timeout=300)
    finally:
        prod.close(timeout=30)
    return time.perf_counter() - t


def consumer_config(overrides: dict | None = None) -> dict:
    """The gateway catalog feed's catch-up settings (gateway.catalog_feed.CONSUMER_CONFIG), plus overrides."""
    try:
        from gateway.catalog_feed import CONSUMER_CONFIG
        cfg = dict(CONSUMER_CONFIG)
    except ImportError:  # the gateway package is not importable here: kafka-python defaults + big fetches
        cfg = {"max_partition_fetch_bytes": 8 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024,
               "receive_buffer_bytes": 4 * 1024 * 1024, "max_poll_records": 10_000}
    cfg.update(overrides or {})
    return cfg


def _gc_paused():
    try:
        from gateway.catalog_feed import gc_paused
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return gc_paused()


def rebuild(bootstrap: str, codec: Codec, *, security: KafkaSecurity, check_crcs: bool = True,
            config: dict | None = None, gc_pause: bool = True, verifier=None) -> dict:
    """Consume from offset 0 until caught up with the end offsets seen at start; return timings.
    Consumer settings and the GC pause are the gateway catalog feed's (``gateway.catalog_feed``)."""
    import contextlib

    from kafka import KafkaConsumer, TopicPartition

    from gateway.catalog_feed import check_signed

    cfg = consumer_config(config)
    cfg["check_crcs"] = check_crcs
    max_records = cfg.get("max_poll_records", 500)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", client_id="bench-catalog-rebuild", **cfg,
                             **security.client_kwargs())
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        builder = CatalogBuilder()
        events = 0
        decode_s = verify_s = 0.0
        pending = {tp for tp in parts if end[tp] > 0}
        t0 = time.perf_counter()
        with _gc_paused() if gc_pause else contextlib.nullcontext():
            while pending:
                batch = consumer.poll(timeout_ms=1000, max_records=max_records)
                for tp, records in batch.items():
                    for r in records:
                        stamp = Stamp(r.timestamp, r.partition, r.offset)
                        if verifier is not None:
                            v0 = time.perf_counter()
                            check_signed(verifier, r)
                            verify_s += time.perf_counter() - v0
                        if r.value is None:
                            centre_id, _, cap_id = r.key.decode().partition("/")
                            builder.remove_capability(centre_id, cap_id, stamp)
                        else:
                            d0 = time.perf_counter()
                            cap = codec.decode(r.value)
                            decode_s += time.perf_counter() - d0
                            builder.upsert_capability(cap, stamp)
                        events += 1
                for tp in list(pending):
                    if consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
        caught_up = time.perf_counter() - t0
        t1 = time.perf_counter()
        snap = builder.build()
        build_s = time.perf_counter() - t1
        return {"events": events, "catch_up_s": caught_up, "decode_s": decode_s, "verify_s": verify_s,
                "build_s": build_s,
                "capabilities": len(snap), "centres_seen": len(snap.stats().by_centre)}
    finally:
        consumer.close()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.catalog_rebuild", description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="CI smoke: 10k events")
    ap.add_argument("--keep", action="store_true", help="keep the broker's data directory")
    ap.add_argument("--unsigned", action="store_true", help="no seals and no verification (the bare path)")
    ap.add_argument("--seal-batch", type=int, default=100, help="records per signature (a relay round)")
    ap.add_argument("--crc-only", action="store_true", help="skip the check_crcs=False comparison run")
    ap.add_argument("--no-gc-pause", action="store_true",
                    help="leave the cyclic GC running during the catch-up (the feed pauses it)")
    ap.add_argument("--consumer", action="append", default=[], metavar="KEY=INT",
                    help="override a consumer setting of gateway.catalog_feed.CONSUMER_CONFIG, "
                         "e.g. --consumer max_poll_records=500 (repeatable)")
    ap.add_argument("--insecure", action="store_true",
                    help="PLAINTEXT broker without ACLs: only to measure what TLS costs")
    a = ap.parse_args(argv)
    overrides = {}
    for kv in a.consumer:
        k, _, v = kv.partition("=")
        overrides[k.strip()] = int(v)
    n = 10_000 if a.quick else a.events

    from infra.devstack.kafka import KafkaBroker

    codec = Codec()
    print(f"catalog rebuild benchmark: {n:,} events, codec: {codec.name}; goal >= {GOAL_EVENTS_PER_S:,} events/s")
    try:
        import crc32c  # noqa: F401
        crc = "crc32c C extension"
    except ImportError:
        crc = "pure Python (install crc32c)"
    print(f"  consumer: {consumer_config(overrides)}; CRC-32C: {crc}; "
          f"GC {'running' if a.no_gc_pause else 'paused'} during the catch-up")
    t = time.perf_counter()
    events = _events(n)
    print(f"  generated {len(events):,} events in {time.perf_counter() - t:.1f} s")
    verifier = None
    if a.unsigned:
        records = [(k, None if c is None else codec.encode(c), []) for k, c in events]
        print("  unsigned records, no verification (--unsigned)")
    else:
        from metrofed.trust.home import FederationHome
        from metrofed.trust.signing import Verifier

        home = FederationHome(Path(tempfile.mkdtemp(prefix="metrofed-bench-trust-")))
        home.init()
        t = time.perf_counter()
        records = seal(events, codec, home, a.seal_batch)
        verifier = Verifier(home.store())
        print(f"  signed by {len(home.store().parties())} centres in batches of {a.seal_batch} "
              f"in {time.perf_counter() - t:.1f} s; the rebuild verifies every record")
    data_dir = Path(tempfile.mkdtemp(prefix="metrofed-bench-kafka-"))
    broker = KafkaBroker(data_dir / "kafka", pki_home=data_dir, insecure=a.insecure)
    security = broker.admin_security
    print(f"  transport: {'PLAINTEXT (--insecure)' if a.insecure else 'TLS with client certificates, ACLs'}")
    try:
        t = time.perf_counter()
        broker.start()
        print(f"  broker up at {broker.bootstrap} in {time.perf_counter() - t:.1f} s")
        _create_topic(broker.bootstrap, security)
        prod_s = produce(broker.bootstrap, records, codec, security)
        print(f"  produced {n:,} events in {prod_s:.1f} s ({n / prod_s:,.0f} events/s, acks=all)")
        results = {}
        for crcs in ((True,) if a.crc_only else (True, False)):
            r = rebuild(broker.bootstrap, codec, security=security, check_crcs=crcs, config=overrides,
                        gc_pause=not a.no_gc_pause, verifier=verifier)
            rate = r["events"] / r["catch_up_s"]
            total = r["events"] / (r["catch_up_s"] + r["build_s"])
            fetch_s = r["catch_up_s"] - r["decode_s"]
            print(f"  rebuild (consumer check_crcs={crcs}): {r['events']:,} events from offset 0 in "
                  f"{r['catch_up_s']:.2f} s = {rate:,.0f} events/s into the builder "
                  f"[goal >= {GOAL_EVENTS_PER_S:,}: {'MET' if rate >= GOAL_EVENTS_PER_S else 'MISSED'}]")
            print(f"    where the time goes: kafka-python fetch+parse+builder {fetch_s:.2f} s "
                  f"({r['events'] / max(fetch_s, 1e-9):,.0f} events/s), decode {r['decode_s']:.2f} s "
                  f"({r['events'] / max(r['decode_s'], 1e-9):,.0f} events/s), signature checks {r['verify_s']:.2f} s; "
                  f"index build {r['build_s']:.2f} s; "
                  f"end to end incl. build {total:,.0f} events/s; {r['capabilities']:,} capabilities of "
                  f"{r['centres_seen']} centres")
            r.update(rate=rate, rate_incl_build=total, codec=codec.name)
            results["crc" if crcs else "nocrc"] = r
        r = results
        return r
    finally:
        broker.stop()
        print("  broker stopped")
        if not a.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
