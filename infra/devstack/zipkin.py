"""Zipkin server (trace backend with UI) from its Maven Central exec jar, in-memory storage.

    with ZipkinServer(port=None) as z:      # None -> a free port
        exporter endpoint: f"{z.url}/api/v2/spans"; UI: f"{z.url}/zipkin/"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ._proc import (CACHE_DIR, REPO_ROOT, file_lock, free_port, launch, log, require_free_port, run_mvn,
                    stop_group, tail)

ZIPKIN_POM_DIR = REPO_ROOT / "infra" / "zipkin"
DEFAULT_ZIPKIN_DIR = CACHE_DIR / "zipkin"
JAR_NAME = "zipkin-server-exec.jar"
_MARKER = ".complete"


def fetch_zipkin_jar(cache_dir: Path | str | None = None) -> Path:
    """Fetch the zipkin-server exec jar (~130 MB) into ``cache_dir`` once; return the jar's path."""
    import hashlib

    d = Path(cache_dir) if cache_dir is not None else DEFAULT_ZIPKIN_DIR
    jar, marker = d / JAR_NAME, d / _MARKER
    fingerprint = hashlib.sha256((ZIPKIN_POM_DIR / "pom.xml").read_bytes()).hexdigest()

    def fresh() -> bool:
        return jar.is_file() and marker.is_file() and marker.read_text().strip() == fingerprint

    if fresh():
        return jar
    with file_lock(d.with_name(d.name + ".lock")):
        if fresh():
            return jar
        for tool in ("java", "mvn"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"devstack needs {tool} on PATH: "
                                   "apt-get install -y openjdk-17-jre-headless maven")
        log(f"fetching the Zipkin server jar from Maven Central into {d} (first run only; ~130 MB)")
        d.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        run_mvn(["dependency:copy", f"-Dzipkin.dir={d}"], "Zipkin jar", cwd=ZIPKIN_POM_DIR)
        if not jar.is_file():
            raise RuntimeError(f"Maven finished but {jar} is missing")
        marker.write_text(fingerprint + "\n")
    return jar


class ZipkinServer:
    """``java -jar zipkin-server-exec.jar`` with ``STORAGE_TYPE=mem``, bound to 127.0.0.1 only.

    Zipkin has no bind-address variable; ``QUERY_PORT`` only sets the port and Armeria then listens
    on all interfaces. The listener list is replaced instead, with Armeria's Spring properties
    ``--armeria.ports[0].ip=127.0.0.1 --armeria.ports[0].port=P --armeria.ports[0].protocols[0]=http``
    (all three: a Spring list given on the command line replaces the YAML list as a whole).
    """

    def __init__(self, port: int | None = 9411, *, data_dir: Path | str | None = None,
                 jar: Path | str | None = None, heap: str = "256m",
                 die_with_parent: bool = True):
        self._want_port = port
        self.port: int | None = port
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self.jar = Path(jar) if jar is not None else None
        self.heap = heap
        self.die_with_parent = die_with_parent
        self._own_dir = data_dir is None
        self.proc: subprocess.Popen | None = None
        self._log_path: Path | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("zipkin not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans_endpoint(self) -> str:
        """What an OTel Zipkin exporter is pointed at."""
        return f"{self.url}/api/v2/spans"

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 90) -> "ZipkinServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        t0 = time.monotonic()
        jar = self.jar or fetch_zipkin_jar()
        self.port = self._want_port or free_port()
        require_free_port(self.port, "zipkin")
        if self.data_dir is None:
            import tempfile
            self.data_dir = Path(tempfile.mkdtemp(prefix="zipkin-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self.data_dir / "zipkin.log"
        env = dict(os.environ)
        env.update({"STORAGE_TYPE": "mem", "QUERY_PORT": str(self.port),
                    "SELF_TRACING_ENABLED": "false",
                    # No Kafka/RabbitMQ/ActiveMQ collectors: they only start when given addresses,
                    # and must not pick up a KAFKA_BOOTSTRAP_SERVERS meant for the project.
                    "KAFKA_BOOTSTRAP_SERVERS": "", "RABBIT_ADDRESSES": "", "RABBIT_URI": "",
                    "ACTIVEMQ_URL": "",
                    # Bounded in-memory store so a long `make run` cannot grow without limit.
                    "MEM_MAX_SPANS": env.get("MEM_MAX_SPANS", "200000")})
        cmd = ["java", "-Xms64m", f"-Xmx{self.heap}", "-XX:+UseSerialGC",
               "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
               "-jar", str(jar),
               "--armeria.ports[0].ip=127.0.0.1",
               f"--armeria.ports[0].port={self.port}",
               "--armeria.ports[0].protocols[0]=http",
               "--logging.level.root=WARN"]
        with open(self._log_path, "ab") as f:
            f.write(f"\n==== devstack start {time.strftime('%Y-%m-%dT%H:%M:%S')} ====\n".encode())
        self.proc = launch(cmd, self._log_path, env=env, cwd=self.data_dir,
                           die_with_parent=self.die_with_parent)
        try:
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline: float) -> None:
        last: object = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zipkin exited with code {self.proc.returncode} while starting;"
                                   f" tail of {self._log_path}:\n{tail(self._log_path)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"zipkin not healthy at {self.url}/health (last: {last!r}); "
                                   f"tail of {self._log_path}:\n{tail(self._log_path)}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return
                    last = r.status
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.2)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, SIGKILL after ``timeout``; removes its own temp dir."""
        if self.proc is not None:
            stop_group(self.proc.pid, timeout, proc=self.proc)
            self.proc = None
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> "ZipkinServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ZipkinServer(url={self.port and self.url})"


__all__ = ["ZipkinServer", "fetch_zipkin_jar", "DEFAULT_ZIPKIN_DIR"]
