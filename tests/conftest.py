"""Session-wide real infrastructure for integration and end-to-end tests.

One Kafka broker (KRaft), one Zipkin and one PostgreSQL for the whole run, started on free loopback
ports on first use and stopped at the end even when tests fail. Unit tests use none of them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from metrofed.bus import topics


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    from infra.devstack import KafkaBroker
    from metrofed.bus.admin import ensure_topics

    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-session"))
    try:
        broker.start(timeout=120)
        ensure_topics(broker.bootstrap, topics.FEDERATION_TOPICS)
        yield broker
    finally:
        broker.stop()


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
