"""The devstack itself: a real Kafka broker (KRaft), Zipkin and PostgreSQL, started and stopped here.

One broker / one Zipkin / one PostgreSQL for the whole module; every fixture stops its process in
a ``finally`` even when a test fails, and checks that nothing is left listening.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
import uuid

import pytest

from infra.devstack import KafkaBroker, PostgresServer, TopicSpec, ZipkinServer, ensure_topics
from infra.devstack._proc import group_alive, port_is_free

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        b.start(timeout=120)
        yield b
    finally:
        pid, port = b.pid, b.port
        b.stop()
        if pid:
            assert not group_alive(pid), "broker process group survived stop()"
            assert port_is_free(port)


@pytest.fixture(scope="module")
def zipkin(tmp_path_factory):
    z = ZipkinServer(port=None, data_dir=tmp_path_factory.mktemp("zipkin"))
    try:
        z.start(timeout=120)
        yield z
    finally:
        pid = z.pid
        z.stop()
        if pid:
            assert not group_alive(pid), "zipkin process group survived stop()"


@pytest.fixture(scope="module")
def postgres():
    pg = PostgresServer(None)  # under /tmp: the postgres OS user must be able to reach it
    try:
        pg.start(timeout=60)
        yield pg
    finally:
        pg.stop()


def test_broker_is_loopback_only_and_autocreate_off(broker):
    from kafka.admin import KafkaAdminClient

    host, port = broker.bootstrap.split(":")
    assert host == "127.0.0.1"
    props = broker.properties_path.read_text()
    assert "auto.create.topics.enable=false" in props
    assert f"CONTROLLER://127.0.0.1:{broker.controller_port}" in props
    assert "PLAINTEXT" not in props  # both listeners TLS, the default
    assert "ssl.client.auth=required" in props
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, **broker.admin_security.client_kwargs())
    try:
        cluster = admin.describe_cluster()
        assert [b["host"] for b in cluster["brokers"]] == ["127.0.0.1"]
    finally:
        admin.close()


def test_ensure_topics_creates_compacted_topic_with_its_config(broker):
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    spec = TopicSpec("devstack.compacted", 3, {"cleanup.policy": "compact",
                                               "min.compaction.lag.ms": "0"})
    assert ensure_topics(broker.bootstrap, [spec], security=broker.admin_security) == {"devstack.compacted": "created"}
    # idempotent: a second call (a restarted service) tolerates the existing topic
    assert ensure_topics(broker.bootstrap, [spec], security=broker.admin_security) == {"devstack.compacted": "exists"}

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, **broker.admin_security.client_kwargs())
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, "devstack.compacted")])
        configs = next(by_name["devstack.compacted"] for by_name in described.values()
                       if "devstack.compacted" in by_name)
        assert configs["cleanup.policy"]["value"] == "compact"
        assert configs["min.compaction.lag.ms"]["value"] == "0"
        (topic,) = admin.describe_topics(["devstack.compacted"])
        assert len(topic["partitions"]) == 3
        assert all(p["leader_id"] == 1 for p in topic["partitions"])
    finally:
        admin.close()


def test_produce_acks_all_and_consume_keyed_message_with_header(broker):
    from kafka import KafkaConsumer, KafkaProducer

    topic = "devstack.roundtrip"
    ensure_topics(broker.bootstrap, [TopicSpec(topic, 3, {})], security=broker.admin_security)
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             enable_idempotence=True, linger_ms=0, **broker.admin_security.client_kwargs())
    try:
        meta = producer.send(topic, key=b"centre-042", value=b'{"hello": "federation"}',
                             headers=[("traceparent", traceparent)]).get(timeout=30)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    assert meta.topic == topic and meta.offset >= 0

    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap,
                             group_id=f"devstack-test-{uuid.uuid4().hex[:8]}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000, **broker.admin_security.client_kwargs())
    try:
        records = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            for tp_records in consumer.poll(timeout_ms=1000).values():
                records.extend(tp_records)
        assert records, "consumed nothing within 30 s"
        (rec,) = records
        assert rec.key == b"centre-042"
        assert json.loads(rec.value) == {"hello": "federation"}
        assert rec.partition == meta.partition and rec.offset == meta.offset
        assert ("traceparent", traceparent) in [(k, bytes(v)) for k, v in rec.headers]
        consumer.commit()  # exercises the group coordinator (__consumer_offsets, 1 partition)
    finally:
        consumer.close()


def test_broker_restart_keeps_topics_and_ports(tmp_path):
    with KafkaBroker(tmp_path / "k") as b:
        first = (b.port, b.controller_port)
        ensure_topics(b.bootstrap, [TopicSpec("devstack.persisted", 1, {})], security=b.admin_security)
    with KafkaBroker(tmp_path / "k") as b:
        assert (b.port, b.controller_port) == first
        assert ensure_topics(b.bootstrap, [TopicSpec("devstack.persisted", 1, {})], security=b.admin_security) == {
            "devstack.persisted": "exists"}


def _http(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_zipkin_accepts_and_returns_a_v2_span(zipkin):
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    now_us = int(time.time() * 1_000_000)
    span = [{
        "traceId": trace_id, "id": span_id, "name": "devstack-check", "kind": "SERVER",
        "timestamp": now_us, "duration": 1500,
        "localEndpoint": {"serviceName": "metrofed-devstack-test"},
        "tags": {"centre.id": "042"},
    }]
    status, _ = _http("POST", zipkin.spans_endpoint, json.dumps(span).encode())
    assert status == 202

    deadline = time.monotonic() + 15
    while True:
        status, body = _http("GET", f"{zipkin.url}/api/v2/trace/{trace_id}")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, body
    (got,) = json.loads(body)
    assert got["id"] == span_id and got["name"] == "devstack-check"
    assert got["localEndpoint"]["serviceName"] == "metrofed-devstack-test"
    assert got["tags"] == {"centre.id": "042"}

    status, page = _http("GET", f"{zipkin.url}/zipkin/")
    assert status == 200 and b"<html" in page.lower()


def test_zipkin_listens_on_loopback_only(zipkin):
    lines = open("/proc/net/tcp6").read().splitlines()[1:] + \
        open("/proc/net/tcp").read().splitlines()[1:]
    port_hex = f"{zipkin.port:04X}"
    listening = [ln.split()[1] for ln in lines
                 if ln.split()[1].endswith(":" + port_hex) and ln.split()[3] == "0A"]
    assert listening, "zipkin port not found in /proc/net/tcp*"
    # 127.0.0.1 as IPv4 (0100007F) or IPv4-mapped IPv6 (::ffff:127.0.0.1)
    assert all(addr.split(":")[0] in ("0100007F", "0000000000000000FFFF00000100007F")
               for addr in listening), listening


@pytest.mark.postgres
def test_postgres_select_1_through_sqlalchemy(postgres):
    import sqlalchemy as sa

    assert postgres.url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == "metrofed"
            assert conn.execute(sa.text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_fresh_database_per_module(postgres):
    import sqlalchemy as sa

    url = postgres.create_database("devstack_mod_a")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id int primary key)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
    # replace=True gives an empty database again (what a test module wants)
    engine = sa.create_engine(postgres.create_database("devstack_mod_a", replace=True))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('t')")).scalar_one() is None
    finally:
        engine.dispose()
