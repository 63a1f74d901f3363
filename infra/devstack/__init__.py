"""Local development/test stack without Docker: a real Kafka broker (KRaft), Zipkin, PostgreSQL.

Library use (pytest fixtures)::

    from infra.devstack import KafkaBroker, TopicSpec, ensure_topics, ZipkinServer, PostgresServer

    with KafkaBroker(tmp_dir / "kafka", pki_home=tmp_dir) as broker:   # port=None -> free port; TLS + ACLs
        ensure_topics(broker.bootstrap, [TopicSpec("x", 3, {"cleanup.policy": "compact"})],
                      security=broker.admin_security)

Command line (``make infra-up`` / ``make infra-down``)::

    python -m infra.devstack up [--kafka-port 9092] [--zipkin-port 9411] [--no-zipkin] [--postgres]
    python -m infra.devstack status [--json]
    python -m infra.devstack down

See docs/devstack.md.
"""

from ._proc import CACHE_DIR, REPO_ROOT, VAR_DIR
from .kafka import KafkaBroker, fetch_kafka_libs
from .postgres import PostgresServer, ensure_postgres_binaries
from .topics import TopicSpec, ensure_topics
from .zipkin import ZipkinServer, fetch_zipkin_jar

__all__ = [
    "KafkaBroker", "fetch_kafka_libs",
    "TopicSpec", "ensure_topics",
    "ZipkinServer", "fetch_zipkin_jar",
    "PostgresServer", "ensure_postgres_binaries",
    "REPO_ROOT", "VAR_DIR", "CACHE_DIR",
]
