"""A real Apache Kafka broker (KRaft, combined broker+controller) run from Maven Central jars.

No tarball and no Docker: ``infra/kafka/pom.xml`` resolves ``org.apache.kafka:kafka_2.13`` plus a
log4j binding, ``fetch_kafka_libs`` copies the runtime classpath into a cache directory once, and
:class:`KafkaBroker` formats a private storage directory and launches ``java ... kafka.Kafka``.

Secured by default: both listeners speak TLS and require a client certificate from the federation's
development CA (metrofed/pki.py, under ``pki_home``); the certificate's CN is the principal, and the
StandardAuthorizer denies whatever no ACL allows (metrofed/bus/acls.py). ``broker`` and ``admin`` are super
users. ``insecure=True`` (benchmarks measuring the cost of TLS only) listens in PLAINTEXT without ACLs.

    with KafkaBroker(tmp_path / "kafka", pki_home=tmp_path) as broker:
        producer = make_producer(broker.bootstrap, "me", security=broker.admin_security)
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from metrofed.bus.security import KafkaSecurity
from metrofed.pki import DevCA

from ._proc import (CACHE_DIR, REPO_ROOT, file_lock, free_port, launch, log, require_free_port,
                    run_mvn, stop_group, tail)

KAFKA_POM_DIR = REPO_ROOT / "infra" / "kafka"
LOG4J_CONFIG = KAFKA_POM_DIR / "log4j2.properties"
DEFAULT_LIBS_DIR = CACHE_DIR / "kafka-libs"
_MARKER = ".complete"

HEAP_OPTS = ["-Xms256m", "-Xmx512m"]
# What kafka-run-class.sh adds, minus the GC log; G1 with a short pause target keeps latency low.
JVM_OPTS = ["-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]


def _check_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"devstack needs {', '.join(missing)} on PATH (Java 17+ and Maven): "
            "apt-get install -y openjdk-17-jre-headless maven")


def _pom_fingerprint(pom: Path) -> str:
    import hashlib
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def fetch_kafka_libs(cache_dir: Path | str | None = None) -> Path:
    """Copy the broker's runtime classpath (~46 jars, ~44 MB) into ``cache_dir`` and return it.

    Skipped when the completion marker is present and matches the current ``infra/kafka/pom.xml``
    (so a version bump re-fetches). Maven's own ``~/.m2`` cache makes a re-fetch cheap too.
    """
    libs = Path(cache_dir) if cache_dir is not None else DEFAULT_LIBS_DIR
    pom = KAFKA_POM_DIR / "pom.xml"
    marker = libs / _MARKER
    fingerprint = _pom_fingerprint(pom)

    def fresh() -> bool:
        return marker.is_file() and marker.read_text().strip() == fingerprint

    if fresh():
        return libs
    with file_lock(libs.with_name(libs.name + ".lock")):
        if fresh():  # another process fetched it while we waited
            return libs
        _check_tools("java", "mvn")
        log(f"fetching Kafka broker jars from Maven Central into {libs} (first run only; ~45 MB)")
        if libs.exists():
            shutil.rmtree(libs)
        libs.mkdir(parents=True)
        run_mvn(["dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={libs}"], "Kafka jars", cwd=KAFKA_POM_DIR)
        if not any(p.name.startswith("kafka_2.13-") for p in libs.glob("*.jar")):
            raise RuntimeError(f"Maven finished but no kafka_2.13 jar in {libs}")
        marker.write_text(fingerprint + "\n")
    return libs


def _kafka_uuid() -> str:
    """A cluster id as ``kafka-storage random-uuid`` makes it (base64url, 22 chars, no leading '-')."""
    while True:
        u = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not u.startswith("-"):
            return u


class KafkaBroker:
    """One KRaft node (``process.roles=broker,controller``) on 127.0.0.1.

    ``data_dir`` holds ``server.properties``, the log dirs (``data/``) and ``broker.log``.
    ``port``/``controller_port`` None pick free ports. ``die_with_parent`` (default True) makes the
    JVM get SIGTERM if the starting thread dies (e.g. a SIGKILLed pytest); the CLI turns it off.
    ``extra_properties`` override/add server.properties entries. ``pki_home`` holds the development CA
    (default: ``data_dir``); ``insecure`` turns TLS and ACLs off. Starting
    again on a formatted ``data_dir`` keeps its topics and reuses the ports it was formatted with
    (the controller endpoint is part of the KRaft voter set), unless other ports are asked for.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None,
                 controller_port: int | None = None, *, libs_dir: Path | str | None = None,
                 extra_properties: dict[str, str] | None = None, die_with_parent: bool = True,
                 pki_home: Path | str | None = None, insecure: bool = False):
        self.data_dir = Path(data_dir).resolve()
        self.insecure = insecure
        self.ca: DevCA | None = None if insecure else DevCA(pki_home if pki_home is not None else self.data_dir)
        self._want_port = port
        self._want_controller_port = controller_port
        self.port: int | None = port
        self.controller_port: int | None = controller_port
        self.libs_dir = Path(libs_dir) if libs_dir is not None else None
        self.extra_properties = dict(extra_properties or {})
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- paths ---------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "data"

    @property
    def _ports_path(self) -> Path:
        return self.data_dir / "ports.json"

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"127.0.0.1:{self.port}"

    @property
    def keystore_path(self) -> Path:
        return self.data_dir / "broker-keystore.pem"

    @property
    def admin_security(self) -> KafkaSecurity:
        """The operator's identity (a super user): for creating topics and ACLs, and for tests' own clients."""
        return self.security_for("admin")

    def security_for(self, party: str) -> KafkaSecurity:
        """A Kafka client identity of ``party`` issued by this broker's CA (PLAINTEXT when insecure)."""
        if self.ca is None:
            return KafkaSecurity.plaintext()
        return KafkaSecurity.from_tls(self.ca.issue(party))

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- config --------------------------------------------------------------------------------
    def _properties(self) -> dict[str, str]:
        p, c = self.port, self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{c}",
            "listeners": f"{self._client_listener}://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"{self._client_listener}://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": self._client_listener,
            "log.dirs": str(self.log_dirs),
            # topics: explicit only, 3 partitions unless said otherwise, one replica
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # internal topics on a single node
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            # small machine (2 cores): few threads, small cleaner buffer, no rebalance delay
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "num.replica.fetchers": "1",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": "16777216",
            "log.retention.hours": "168",
            "log.segment.bytes": "67108864",
        }
        props.update(self._security_properties())
        props.update(self.extra_properties)
        return props

    @property
    def _client_listener(self) -> str:
        return "PLAINTEXT" if self.insecure else "SSL"

    def _security_properties(self) -> dict[str, str]:
        if self.insecure:
            return {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}
        return {
            # No PLAINTEXT listener at all: the controller listener is TLS too, the broker's own certificate
            # authenticating it to itself.
            "listener.security.protocol.map": "SSL:SSL,CONTROLLER:SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_path),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca.ca_cert_path),
            "ssl.client.auth": "required",
            "ssl.endpoint.identification.algorithm": "https",
            # Party certificates carry the subject "CN=<party>": that party is the principal. Any other
            # subject stays the whole DN, which no ACL names.
            "ssl.principal.mapping.rules": "RULE:^CN=([a-z0-9-]+)$/$1/,DEFAULT",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": "User:broker;User:admin",
        }

    def _write_keystore(self) -> None:
        # Kafka's PEM keystore is one file: the unencrypted PKCS#8 key, then the certificate chain.
        tls = self.ca.issue("broker")
        fd = os.open(self.keystore_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(tls.key.read_bytes() + tls.cert.read_bytes())

    def _write_properties(self) -> None:
        lines = ["# written by infra/devstack/kafka.py -- regenerated on every start"]
        lines += [f"{k}={v}" for k, v in self._properties().items()]
        self.properties_path.write_text("\n".join(lines) + "\n")

    def _formatted(self) -> bool:
        return (self.log_dirs / "meta.properties").is_file()

    def _choose_ports(self) -> None:
        previous: dict = {}
        if self._ports_path.is_file() and self._formatted():
            previous = json.loads(self._ports_path.read_text())
        self.port = self._want_port or previous.get("port") or free_port()
        self.controller_port = (self._want_controller_port or previous.get("controller_port")
                                or free_port())
        if self.controller_port == self.port:
            self.controller_port = free_port()
        if previous and previous.get("controller_port") != self.controller_port:
            # The voter set recorded at format time names the old controller endpoint.
            log(f"kafka: controller port changed ({previous.get('controller_port')} -> "
                f"{self.controller_port}); wiping {self.log_dirs}")
            shutil.rmtree(self.log_dirs, ignore_errors=True)
        require_free_port(self.port, "kafka broker")
        require_free_port(self.controller_port, "kafka controller")

    def _java(self, libs: Path, main: str, *args: str, heap: list[str]) -> list[str]:
        return ["java", *heap, *JVM_OPTS, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
                "-cp", f"{libs}/*", main, *args]

    def _format(self, libs: Path) -> None:
        cluster_id = _kafka_uuid()
        cmd = self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                         "-c", str(self.properties_path), "--standalone",
                         heap=["-Xmx256m"])
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{res.stdout[-4000:]}")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 90) -> "KafkaBroker":
        if self.proc is not None and self.proc.poll() is None:
            return self
        t0 = time.monotonic()
        libs = fetch_kafka_libs(self.libs_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        if self.ca is not None:
            self._write_keystore()
        self._write_properties()
        if not self._formatted():
            self._format(libs)
        self._ports_path.write_text(json.dumps(
            {"port": self.port, "controller_port": self.controller_port}) + "\n")
        with open(self.log_path, "ab") as f:
            f.write(f"\n==== devstack start {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n".encode())
        cmd = self._java(libs, "kafka.Kafka", str(self.properties_path), heap=HEAP_OPTS)
        self.proc = launch(cmd, self.log_path, cwd=self.data_dir,
                           die_with_parent=self.die_with_parent)
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        from kafka.admin import KafkaAdminClient

        last_error: Exception | None = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kafka broker exited with code {self.proc.returncode} while starting; "
                    f"tail of {self.log_path}:\n{tail(self.log_path)}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"kafka broker not ready at {self.bootstrap} (last error: {last_error!r}); "
                    f"tail of {self.log_path}:\n{tail(self.log_path)}")
            admin = None
            try:
                budget_ms = int(max(1.0, min(5.0, remaining)) * 1000)
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                         bootstrap_timeout_ms=budget_ms,
                                         request_timeout_ms=budget_ms,
                                         client_id="devstack-readiness",
                                         **self.admin_security.client_kwargs())
                cluster = admin.describe_cluster()
                if cluster.get("brokers"):
                    admin.list_topics()
                    return
                last_error = RuntimeError(f"no brokers registered yet: {cluster}")
            except Exception as exc:  # noqa: BLE001 -- any failure means "not yet"
                last_error = exc
            finally:
                if admin is not None:
                    try:
                        admin.close()
                    except Exception:  # noqa: BLE001
                        pass
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        stop_group(self.proc.pid, timeout, proc=self.proc)
        self.proc = None

    def __enter__(self) -> "KafkaBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaBroker(bootstrap={self.port and self.bootstrap}, data_dir={str(self.data_dir)!r})"


__all__ = ["KafkaBroker", "fetch_kafka_libs", "DEFAULT_LIBS_DIR"]

