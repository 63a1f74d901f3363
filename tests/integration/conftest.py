"""Shared fixtures for the integration tests: databases (SQLite and PostgreSQL), migrated schemas,
a Kafka topic per test, helpers to read what reached the broker, and an in-memory span exporter.

The real infrastructure (Kafka broker, PostgreSQL server) comes from the session fixtures in
``tests/conftest.py``; nothing here fakes Kafka. Every helper is bounded in time.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from metrofed.db.engine import make_engine, upgrade_to_head

ROOT = Path(__file__).resolve().parents[2]
CENTRE_MIGRATIONS = ROOT / "services" / "centre" / "migrations"
GATEWAY_MIGRATIONS = ROOT / "gateway" / "migrations"


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """Polls ``predicate`` until it returns something truthy; fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---- databases -------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    pg = request.getfixturevalue("postgres")
    name = "t_" + uuid.uuid4().hex[:16]
    url = pg.create_database(name, replace=True)
    try:
        yield url
    finally:
        pg.drop_database(name)


@pytest.fixture
def engine_factory():
    """Makes engines and disposes of them at teardown (before the database is dropped)."""
    engines = []

    def make(url: str):
        engine = make_engine(url, instrument=False)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def centre_db(database_url, engine_factory) -> sessionmaker:
    engine = engine_factory(database_url)
    upgrade_to_head(engine, CENTRE_MIGRATIONS)
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def gateway_db(database_url, engine_factory) -> sessionmaker:
    engine = engine_factory(database_url)
    upgrade_to_head(engine, GATEWAY_MIGRATIONS)
    return sessionmaker(engine, expire_on_commit=False)


# ---- seed data -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def seed():
    from metrofed.seed import load_seed

    centres = load_seed()
    assert len(centres) == 18
    return centres


@pytest.fixture(scope="session")
def seed_by_id(seed):
    return {c.centre_id: c for c in seed}


# ---- Kafka -----------------------------------------------------------------------------------------------

@pytest.fixture
def topic(kafka, kafka_admin):
    """A new single-partition topic with a unique name; deleted at teardown."""
    from metrofed.bus.admin import ensure_topics
    from metrofed.bus.topics import TopicSpec

    name = f"it.{uuid.uuid4().hex[:12]}"
    ensure_topics(kafka.bootstrap, [TopicSpec(name, 1, {"min.insync.replicas": "1"})], security=kafka_admin)
    yield name
    delete_topics(kafka.bootstrap, [name], kafka_admin)


def delete_topics(bootstrap: str, names: list[str], security) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-cleanup", **security.client_kwargs())
    try:
        admin.delete_topics(names, timeout_ms=10000)
    except Exception:  # noqa: BLE001 - cleanup is best effort; topic names are unique anyway
        pass
    finally:
        admin.close()


@pytest.fixture
def producer(kafka, kafka_admin):
    from metrofed.bus.producer import make_producer

    p = make_producer(kafka.bootstrap, client_id=unique("it-producer"), security=kafka_admin)
    yield p
    p.close(timeout=5)


@dataclass
class TopicReader:
    """Reads a topic from the end offsets taken at creation: only what was written afterwards."""

    bootstrap: str
    topic: str
    security: object  # metrofed.bus.security.KafkaSecurity
    consumer: object = None
    records: list = field(default_factory=list)

    def __post_init__(self):
        from kafka import KafkaConsumer
        from kafka.structs import TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                      enable_auto_commit=False, client_id=unique("it-reader"),
                                      **self.security.client_kwargs())
        parts = wait_until(lambda: self.consumer.partitions_for_topic(self.topic), 15,
                           what=f"partitions of {self.topic}")
        self.parts = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self.consumer.assign(self.parts)
        for tp, offset in self.consumer.end_offsets(self.parts).items():
            self.consumer.seek(tp, offset)

    def read(self, n: int, match=lambda r: True, timeout: float = 15.0) -> list:
        """Waits until ``n`` records satisfying ``match`` have arrived; returns those."""
        deadline = time.monotonic() + timeout
        while True:
            for records in self.consumer.poll(timeout_ms=200).values():
                self.records.extend(records)
            found = [r for r in self.records if match(r)]
            if len(found) >= n:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"{self.topic}: expected {n} records, got {len(found)} within {timeout}s")

    def settle(self, match=lambda r: True, seconds: float = 1.0) -> list:
        """Everything matching that arrives within ``seconds`` (to show that nothing more came)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for records in self.consumer.poll(timeout_ms=100).values():
                self.records.extend(records)
        return [r for r in self.records if match(r)]

    def close(self):
        self.consumer.close()


@pytest.fixture
def topic_reader(kafka, kafka_admin):
    readers = []

    def make(name: str) -> TopicReader:
        r = TopicReader(kafka.bootstrap, name, kafka_admin)
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()


def committed_offset(bootstrap: str, group: str, topic: str, partition: int = 0, *, security) -> int | None:
    from kafka.admin import KafkaAdminClient
    from kafka.structs import TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="it-offsets", **security.client_kwargs())
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    meta = offsets.get(TopicPartition(topic, partition))
    return None if meta is None or meta.offset < 0 else meta.offset


# ---- a stand-in record for direct handler calls (our handler port, not Kafka) ---------------------------

@dataclass
class FakeRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
    headers: list = field(default_factory=list)
    timestamp: int = 0


def record_for(topic: str, envelope, key: str | None = None, offset: int = 0) -> FakeRecord:
    return FakeRecord(topic=topic, value=envelope.SerializeToString(), key=key.encode() if key else None,
                      offset=offset, headers=[("metrofed-event-type", envelope.event_type.encode()),
                                              ("metrofed-event-id", envelope.event_id.encode())])


# ---- tracing ---------------------------------------------------------------------------------------------

_EXPORTER = None


@pytest.fixture(scope="session")
def span_exporter():
    """An in-memory exporter on the process's SDK tracer provider (installed here if none is set yet).

    ``trace.set_tracer_provider`` works once per process, so when another test (or
    metrofed.telemetry.setup_tracing) already installed an SDK provider we add our processor to it.
    """
    global _EXPORTER
    if _EXPORTER is not None:
        return _EXPORTER
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        pytest.skip("a non-SDK tracer provider is installed globally; cannot observe spans")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _EXPORTER = exporter
    return exporter
