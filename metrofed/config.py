"""All configuration, read once from the environment, failing fast with a message that names the variable."""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(RuntimeError):
    pass


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"environment variable {name} is required")
    return value


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None


INSECURE_ENV = "METROFED_INSECURE"
TLS_ENV = ("METROFED_TLS_CA", "METROFED_TLS_CERT", "METROFED_TLS_KEY")


@dataclass(frozen=True)
class TLSFiles:
    """This process's TLS identity: the CA it trusts, its certificate and key (PEM files)."""

    ca: str
    cert: str
    key: str


def insecure() -> bool:
    """METROFED_INSECURE=1 turns TLS off for gRPC and Kafka: for benchmarks that measure its cost only."""
    return os.environ.get(INSECURE_ENV) == "1"


def _existing_file(name: str) -> str:
    path = _env(name)
    if not os.path.isfile(path):
        raise ConfigError(f"environment variable {name}={path!r}: no such file")
    return path


def load_tls() -> TLSFiles | None:
    """The TLS identity from METROFED_TLS_CA/_CERT/_KEY; None only when METROFED_INSECURE=1."""
    if insecure():
        return None
    return TLSFiles(*(_existing_file(n) for n in TLS_ENV))


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    database_url: str
    listen: str  # host:port of the gRPC server; port 0 picks a free one
    zipkin_endpoint: str  # empty: no Zipkin export
    otlp_endpoint: str  # OTEL_EXPORTER_OTLP_ENDPOINT; when set, wins over Zipkin
    outbox_poll_seconds: float
    topic_replication: int  # replication factor of the topics this process creates (1 on one broker)
    advertise: str  # host:port other parties should dial; defaults to the listen address
    trust_file: str  # METROFED_TRUST_FILE: the federation's trust document (metrofed/trust/store.py)
    signing_key: str  # METROFED_SIGNING_KEY: this party's Ed25519 event-signing key (PEM)
    # METROFED_INSECURE=1: no TLS, credentials or signatures (benchmarks of the bare path only; never the default)
    insecure: bool
    # Test-only fault injection: kill this process with SIGKILL right after the inbox transaction
    # commits and before the Kafka offset is committed (see tests/e2e/test_crash_recovery.py).
    crash_after_inbox_commit: bool
    tls: TLSFiles | None  # None: METROFED_INSECURE=1 (plaintext gRPC and Kafka, benchmarks only)

    @property
    def kafka_security(self):
        from metrofed.bus.security import KafkaSecurity

        return KafkaSecurity.from_tls(self.tls)


def load_settings(default_database_url: str) -> Settings:
    listen = os.environ.get("METROFED_LISTEN", "127.0.0.1:0")
    if ":" not in listen:
        raise ConfigError(f"METROFED_LISTEN={listen!r} must be host:port")
    return Settings(
        kafka_bootstrap=_env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        database_url=_env("DATABASE_URL", default_database_url),
        listen=listen,
        zipkin_endpoint=os.environ.get("ZIPKIN_ENDPOINT", "http://127.0.0.1:9411/api/v2/spans"),
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        outbox_poll_seconds=_env_float("METROFED_OUTBOX_POLL_SECONDS", 0.2),
        topic_replication=int(_env_float("METROFED_TOPIC_REPLICATION", 1)),
        advertise=os.environ.get("METROFED_ADVERTISE", ""),
        trust_file=os.environ.get("METROFED_TRUST_FILE", ""),
        signing_key=os.environ.get("METROFED_SIGNING_KEY", ""),
        insecure=insecure(),
        crash_after_inbox_commit=os.environ.get("METROFED_TEST_CRASH_AFTER_INBOX_COMMIT") == "1",
        tls=load_tls(),
    )
