"""The secured broker refuses whoever it should, as the client sees it (issue 8.4).

The session broker (tests/conftest.py) requires a client certificate from the session's CA and enforces
ACLs (metrofed/bus/acls.py). Parties here have unique names, so granting and revoking them cannot touch the
gateway and centres of the end-to-end federation sharing the broker.
"""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition
from kafka.errors import GroupAuthorizationFailedError, KafkaError, TopicAuthorizationFailedError

from metrofed.bus import acls, topics
from metrofed.bus.admin import ensure_topics
from metrofed.bus.producer import make_producer
from metrofed.bus.security import KafkaSecurity
from metrofed.pki import DevCA

pytestmark = pytest.mark.integration


def centre(kafka, kafka_admin):
    """A freshly enrolled centre with its own inbox; returns (centre_id, its KafkaSecurity)."""
    centre_id = f"sec-{uuid.uuid4().hex[:8]}"
    acls.grant_centre(kafka.bootstrap, kafka_admin, centre_id)
    security = kafka.security_for(f"centre-{centre_id}")
    ensure_topics(kafka.bootstrap, [topics.inbox_spec(centre_id)], security=security)
    return centre_id, security


@pytest.fixture
def two_centres(kafka, kafka_admin):
    a, b = centre(kafka, kafka_admin), centre(kafka, kafka_admin)
    yield a, b
    for centre_id, _ in (a, b):
        acls.revoke_party(kafka.bootstrap, kafka_admin, f"centre-{centre_id}")


def connect_admin(kafka, **security_kwargs) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id="it-intruder",
                             bootstrap_timeout_ms=4000, request_timeout_ms=4000, **security_kwargs)
    try:
        return admin.list_topics()
    finally:
        admin.close()


def send(kafka, security: KafkaSecurity, topic: str) -> None:
    producer = make_producer(kafka.bootstrap, f"it-{uuid.uuid4().hex[:6]}", security=security)
    try:
        producer.send(topic, key=b"k", value=b"v").get(timeout=10)
    finally:
        producer.close(timeout=5)


# ---- authentication: TLS with a certificate from the federation's CA, nothing else -------------------------

def test_the_admin_identity_is_let_in(kafka, kafka_admin):
    assert topics.CAPABILITIES in connect_admin(kafka, **kafka_admin.client_kwargs())


def test_a_plaintext_client_is_refused(kafka):
    with pytest.raises(KafkaError):
        connect_admin(kafka, security_protocol="PLAINTEXT")


def test_a_client_without_a_certificate_is_refused(kafka, kafka_admin):
    with pytest.raises(KafkaError):
        connect_admin(kafka, security_protocol="SSL", ssl_cafile=kafka_admin.ca, ssl_check_hostname=True)


def test_a_certificate_from_another_ca_is_refused_even_named_admin(kafka, kafka_admin, tmp_path):
    forged = DevCA(tmp_path).issue("admin")  # same name as the super user, wrong issuer
    with pytest.raises(KafkaError):
        connect_admin(kafka, security_protocol="SSL", ssl_cafile=kafka_admin.ca, ssl_certfile=str(forged.cert),
                      ssl_keyfile=str(forged.key), ssl_check_hostname=True)


def test_a_valid_certificate_without_acls_may_do_nothing(kafka):
    stranger = kafka.security_for(f"stranger-{uuid.uuid4().hex[:6]}")
    assert not [t for t in connect_admin(kafka, **stranger.client_kwargs()) if t.startswith("metrofed.")]
    with pytest.raises(TopicAuthorizationFailedError):
        send(kafka, stranger, topics.CAPABILITIES)


# ---- authorisation: each party only what its ACLs allow ------------------------------------------------------

def test_a_centre_writes_its_shared_topics_and_reads_its_own_inbox(kafka, producer, two_centres):
    (a, sec_a), _ = two_centres
    for topic in (topics.CENTRES, topics.CAPABILITIES, topics.REQUEST_STATUS):
        send(kafka, sec_a, topic)
    producer.send(topics.inbox(a), key=b"k", value=b"for a").get(timeout=10)
    consumer = KafkaConsumer(topics.inbox(a), bootstrap_servers=kafka.bootstrap, group_id=f"centre-{a}",
                             auto_offset_reset="earliest", enable_auto_commit=False, **sec_a.client_kwargs())
    try:
        got = []
        for _ in range(50):
            got += [r.value for rs in consumer.poll(timeout_ms=200).values() for r in rs]
            if got:
                break
        assert got == [b"for a"]
        consumer.commit()
    finally:
        consumer.close()


def test_a_centre_cannot_read_another_centres_inbox(kafka, producer, two_centres):
    (a, sec_a), (b, _) = two_centres
    producer.send(topics.inbox(b), key=b"k", value=b"for b only").get(timeout=10)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap, client_id="it-a", **sec_a.client_kwargs())
    try:
        (described,) = admin.describe_topics([topics.inbox(b)])
    finally:
        admin.close()
    assert described["error_code"] == TopicAuthorizationFailedError.errno
    # kafka-python keeps asking for the metadata the broker refuses instead of raising: nothing arrives.
    consumer = KafkaConsumer(topics.inbox(b), bootstrap_servers=kafka.bootstrap, group_id=f"centre-{a}",
                             auto_offset_reset="earliest", **sec_a.client_kwargs())
    try:
        got = [r for _ in range(15) for rs in consumer.poll(timeout_ms=200).values() for r in rs]
    finally:
        consumer.close()
    assert got == []


def test_a_centre_cannot_consume_in_another_centres_group(kafka, two_centres):
    (a, sec_a), (b, _) = two_centres
    consumer = KafkaConsumer(topics.inbox(a), bootstrap_servers=kafka.bootstrap, group_id=f"centre-{b}",
                             auto_offset_reset="earliest", **sec_a.client_kwargs())
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            for _ in range(25):
                consumer.poll(timeout_ms=200)
    finally:
        consumer.close()


@pytest.mark.parametrize("whose", ["own", "other"])
def test_a_centre_cannot_write_any_inbox(kafka, two_centres, whose):
    (a, sec_a), (b, _) = two_centres
    with pytest.raises(TopicAuthorizationFailedError):
        send(kafka, sec_a, topics.inbox(a if whose == "own" else b))


def test_a_centre_cannot_create_another_centres_topics(kafka, two_centres):
    (_, sec_a), _ = two_centres
    other = f"sec-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaError, match="Authorization"):
        ensure_topics(kafka.bootstrap, [topics.inbox_spec(other)], security=sec_a, timeout=10)


def test_the_gateway_cannot_write_the_capabilities_topic(kafka, kafka_admin):
    acls.grant_gateway(kafka.bootstrap, kafka_admin)  # idempotent: the e2e federation's gateway has it too
    gateway = kafka.security_for("gateway")
    with pytest.raises(TopicAuthorizationFailedError):
        send(kafka, gateway, topics.CAPABILITIES)


def test_a_revoked_centre_loses_its_rights_at_once(kafka, kafka_admin):
    centre_id, security = centre(kafka, kafka_admin)
    send(kafka, security, topics.CAPABILITIES)
    removed = acls.revoke_party(kafka.bootstrap, kafka_admin, f"centre-{centre_id}")
    assert removed == len(acls._acls(f"centre-{centre_id}", acls.centre_grants(centre_id)))
    with pytest.raises(TopicAuthorizationFailedError):
        send(kafka, security, topics.CAPABILITIES)
