"""The outbox relay against a real broker: how fast pending rows go out, and what one refused row costs.

Starts a private KRaft broker (as ``bench.catalog_rebuild`` does), a SQLite centre database at head, and
times ``OutboxRelay.relay_once`` until the table is drained, in three cases:

- ``distinct keys``: N rows, each of its own key (requests, capabilities): one round sends them all;
- ``one key``: M rows of one key (one request's events, one capability's revisions): one row per round,
  since a key's next row is sent only after the broker acknowledged the previous one;
- ``behind a refused row``: a 1.5 MB row first (the old inline certificate), then N rows of other keys:
  the refused row is marked dead and the others go out, instead of all of them waiting for ever.

    .venv/bin/python -m bench.outbox_relay [--rows 5000] [--chain 300] [--insecure]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy.orm import sessionmaker

TOPIC = "bench.outbox.v1"


def _stage(sessions, rows: list[tuple[str, int]]) -> None:
    from services.centre.models import Outbox

    with sessions.begin() as s:
        for key, size in rows:
            event_id = str(uuid.uuid4())
            s.add(Outbox(event_id=event_id, event_type="metrofed.v1.Bench", topic=TOPIC, key=key,
                         value=event_id.encode().ljust(size, b"."), trace_carrier={}))


def _drain(relay, sessions) -> tuple[float, int]:
    from sqlalchemy import func, select

    from services.centre.models import Outbox

    t0 = time.perf_counter()
    calls = 0
    while True:
        relay.relay_once()
        calls += 1
        with sessions() as s:
            left = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None),
                                                                           Outbox.failed_at.is_(None)))
        if not left:
            return time.perf_counter() - t0, calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.outbox_relay")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--chain", type=int, default=300)
    ap.add_argument("--insecure", action="store_true", help="PLAINTEXT broker (no TLS, no ACLs)")
    a = ap.parse_args(argv)

    from infra.devstack.kafka import KafkaBroker
    from metrofed.bus.admin import ensure_topics
    from metrofed.bus.producer import make_producer
    from metrofed.bus.topics import TopicSpec
    from metrofed.db.engine import make_engine, upgrade_to_head
    from metrofed.db.outbox import OutboxRelay
    from services.centre.models import Outbox

    data_dir = Path(tempfile.mkdtemp(prefix="metrofed-bench-outbox-"))
    broker = KafkaBroker(data_dir / "kafka", pki_home=data_dir, insecure=a.insecure)
    print("outbox relay: real broker, SQLite, 100-byte rows unless said")
    broker.start(timeout=180)
    try:
        security = broker.admin_security
        ensure_topics(broker.bootstrap, [TopicSpec(TOPIC, 6, {"min.insync.replicas": "1"})], security=security)
        engine = make_engine(f"sqlite:///{data_dir / 'centre.db'}", instrument=False)
        upgrade_to_head(engine, Path(__file__).resolve().parents[1] / "services" / "centre" / "migrations")
        sessions = sessionmaker(engine, expire_on_commit=False)
        producer = make_producer(broker.bootstrap, "bench-outbox", security=security)
        relay = OutboxRelay(sessions, Outbox, producer, batch=1000)

        _stage(sessions, [(f"warm-{i}", 100) for i in range(50)])
        _drain(relay, sessions)

        _stage(sessions, [(f"req-{i}", 100) for i in range(a.rows)])
        secs, calls = _drain(relay, sessions)
        print(f"  distinct keys: {a.rows} rows in {secs:.2f} s = {a.rows / secs:,.0f} rows/s ({calls} relay_once calls)")

        _stage(sessions, [("one-request", 100)] * a.chain)
        secs, calls = _drain(relay, sessions)
        print(f"  one key:       {a.chain} rows in {secs:.2f} s = {a.chain / secs:,.0f} rows/s "
              f"(one row per round: {secs / a.chain * 1000:.1f} ms per round)")

        _stage(sessions, [("old-certificate", 1_500_000)] + [(f"after-{i}", 100) for i in range(a.rows)])
        secs, calls = _drain(relay, sessions)
        print(f"  behind a refused 1.5 MB row: {a.rows} rows of other keys in {secs:.2f} s "
              f"= {a.rows / secs:,.0f} rows/s; dead rows: {relay.dead_total}, producer renewals: "
              f"{relay.producer_renewals}")
        producer.close(timeout=5)
        engine.dispose()
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
