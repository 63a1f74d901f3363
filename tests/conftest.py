"""Session-wide real infrastructure for integration and end-to-end tests.

One Kafka broker (KRaft), one Zipkin and one PostgreSQL for the whole run, started on free loopback
ports on first use and stopped at the end even when tests fail. Unit tests use none of them.

The broker is secured as in `make run`: TLS listeners requiring a client certificate from the session's
development CA (``pki``), ACLs enforced. Tests' own Kafka clients use ``kafka_admin`` (the operator
identity, a super user) or ``kafka.security_for(party)``; gRPC clients verify servers against the CA, which
the ``pki`` fixture makes this process's METROFED_TLS_CA.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from metrofed.bus import topics


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The session's development CA (metrofed.pki.DevCA); its certificate is METROFED_TLS_CA for this process."""
    from metrofed.pki import DevCA

    ca = DevCA(tmp_path_factory.mktemp("pki-home")).ensure()
    env = pytest.MonkeyPatch()
    env.setenv("METROFED_TLS_CA", str(ca.ca_cert_path))
    env.delenv("METROFED_INSECURE", raising=False)
    yield ca
    env.undo()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory, pki):
    from infra.devstack import KafkaBroker
    from metrofed.bus.admin import ensure_topics

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-session"), pki_home=pki.home)
    try:
        broker.start(timeout=120)
        ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS, security=broker.admin_security)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_admin(kafka):
    """metrofed.bus.security.KafkaSecurity of the admin party (Kafka super user) on the session broker."""
    return kafka.admin_security


@pytest.fixture(scope="session")
def zipkin(tmp_path_factory):
    from infra.devstack import ZipkinServer

    server = ZipkinServer(port=None, data_dir=tmp_path_factory.mktemp("zipkin-session"))
    try:
        server.start(timeout=120)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres():
    from infra.devstack import PostgresServer

    # The postgres OS user must be able to reach the data directory: not under pytest's 0700 tmp dirs.
    data_dir = Path(tempfile.mkdtemp(prefix="metrofed-pg-"))
    data_dir.chmod(0o755)
    server = PostgresServer(data_dir=data_dir)
    try:
        server.start(timeout=120)
        yield server
    finally:
        server.stop(cleanup=True)


def pytest_collection_modifyitems(config, items):
    """The heavy fault variants (marker ``fault``) run only when asked for (``-m fault``): they would push
    ``make test`` past its budget. Deselected, not skipped."""
    if "fault" in (config.getoption("markexpr") or ""):
        return
    keep = [i for i in items if i.get_closest_marker("fault") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("fault") is not None])
        items[:] = keep
