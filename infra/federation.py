"""Starts metrofed's own processes — one per centre, plus the gateway — against a running Kafka.

Used by ``make run`` (infra/demo.py) and by the end-to-end tests, so both exercise the same start-up
path. Each process runs in its own session (process group) and logs to ``<workdir>/logs/<name>.log``;
``stop`` sends SIGTERM (graceful: drain outbox, close consumers), then SIGKILL after a grace period.

Before a process starts, its party is enrolled (``enrol_centre``/``enrol_gateway``): the federation's CA
issues its TLS identity, the admin identity grants its Kafka ACLs, and the federation's home
(``metrofed.trust.home``) registers its event-signing key; the process gets them through
METROFED_TLS_CA/_CERT/_KEY, METROFED_TRUST_FILE and METROFED_SIGNING_KEY. Callers get credentials from
``credential``/``gateway_as``/``centre_as`` — as an operator would issue them with ``metrofed issue``.
``ca=None`` runs everything without TLS, credentials or signatures (METROFED_INSECURE=1, benchmarks only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from metrofed import client
from metrofed.bus import acls
from metrofed.bus.security import KafkaSecurity
from metrofed.domain.access import Role
from metrofed.pki import DevCA
from metrofed.trust.home import FederationHome

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = REPO_ROOT / "seed" / "centres"


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    ready_file: Path
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    endpoint: str = ""

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Federation:
    kafka_bootstrap: str
    workdir: Path
    # The federation's CA (the broker's: infra.devstack.KafkaBroker.ca); None only for insecure benchmarks.
    ca: DevCA | None
    zipkin_endpoint: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    home: FederationHome | None = None  # trust document, signing keys, credentials; default <workdir>/federation

    def __post_init__(self) -> None:
        if self.home is None:
            self.home = FederationHome(self.workdir / "federation")
        self.home.init()

    def _signing_env(self, party: str, kind: str) -> dict[str, str]:
        """Enrols ``party``'s signing key (idempotent); the environment that lets its process use it."""
        self.home.enrol(party, kind)
        return {"METROFED_TRUST_FILE": str(self.home.trust_file),
                "METROFED_SIGNING_KEY": str(self.home.signing_key_file(party))}

    def credential(self, role: Role, subject: str) -> str:
        return self.home.credential(role, subject)

    def gateway_as(self, subject: str, role: Role = Role.ENTERPRISE, name: str = "gateway"):
        """A gateway stub that calls as ``role:subject`` (an enterprise unless said otherwise)."""
        return client.gateway(self.procs[name].endpoint, self.credential(role, subject), ca=self._ca_file)

    def centre_as(self, centre_id: str, role: Role = Role.CENTRE, subject: str | None = None):
        """A stub of centre ``centre_id``'s service, called by its own staff unless said otherwise."""
        return client.centre(self.procs[f"centre-{centre_id}"].endpoint,
                             self.credential(role, subject or centre_id), ca=self._ca_file)

    @property
    def _ca_file(self):
        return self.ca.issue("admin").ca if self.ca else None

    @property
    def admin(self) -> KafkaSecurity:
        """The operator's Kafka identity (super user): grants ACLs, creates the shared topics."""
        return KafkaSecurity.from_tls(self.ca.issue("admin") if self.ca else None)

    def enrol_centre(self, centre_id: str) -> dict[str, str]:
        """Issues the centre's TLS identity and grants its ACLs; returns the environment that carries it."""
        if self.ca is None:
            return {}
        tls = self.ca.issue(f"centre-{centre_id}")
        acls.grant_centre(self.kafka_bootstrap, self.admin, centre_id)
        return {**tls.env(), **self._signing_env(f"centre-{centre_id}", "centre")}

    def enrol_gateway(self) -> dict[str, str]:
        if self.ca is None:
            return {}
        tls = self.ca.issue("gateway")
        acls.grant_gateway(self.kafka_bootstrap, self.admin)
        return {**tls.env(), **self._signing_env("gateway", "gateway")}

    def _env(self, database_url: str, more: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("METROFED_TEST_", "METROFED_TLS_")) and k != "METROFED_INSECURE"}
        if self.ca is None:
            env["METROFED_INSECURE"] = "1"
        env.update({
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "DATABASE_URL": database_url,
            "ZIPKIN_ENDPOINT": self.zipkin_endpoint,
            "METROFED_LISTEN": "127.0.0.1:0",
            "PYTHONUNBUFFERED": "1",
            # Spans leave quickly so a trace is complete in Zipkin seconds after a request.
            "OTEL_BSP_SCHEDULE_DELAY": "500",
        })
        env.update(self.extra_env)
        env.update(more or {})
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "run" / f"{name}.ready"
        ready.parent.mkdir(parents=True, exist_ok=True)
        ready.unlink(missing_ok=True)
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen([*argv, "--ready-file", str(ready)], cwd=REPO_ROOT, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        proc = Proc(name, popen, ready, log_path, argv, env)
        self.procs[name] = proc
        return proc

    def start_centre(self, seed_file: Path, *, database_url: str | None = None,
                     env: dict[str, str] | None = None) -> Proc:
        centre_id = seed_file.stem
        db = database_url or f"sqlite:///{self.workdir / 'db' / f'{centre_id}.db'}"
        return self._spawn(f"centre-{centre_id}", [sys.executable, "-m", "services.centre", "--seed", str(seed_file)],
                           self._env(db, {**self.enrol_centre(centre_id), **(env or {})}))

    def start_gateway(self, *, database_url: str | None = None, env: dict[str, str] | None = None,
                      name: str = "gateway") -> Proc:
        db = database_url or f"sqlite:///{self.workdir / 'db' / f'{name}.db'}"
        return self._spawn(name, [sys.executable, "-m", "gateway"],
                           self._env(db, {**self.enrol_gateway(), **(env or {})}))

    def restart(self, name: str, env: dict[str, str] | None = None) -> Proc:
        """Starts a stopped process again with the same arguments and database."""
        old = self.procs[name]
        new_env = {k: v for k, v in old.env.items() if not k.startswith("METROFED_TEST_")}
        new_env.update(env or {})
        return self._spawn(name, old.argv, new_env)

    def wait_ready(self, *names: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names or self.procs)
        while pending:
            for name in list(pending):
                proc = self.procs[name]
                if proc.ready_file.exists() and proc.ready_file.read_text().strip():
                    proc.endpoint = proc.ready_file.read_text().strip()
                    pending.remove(name)
                elif not proc.alive:
                    raise RuntimeError(f"{name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {pending}\n"
                                   + "\n".join(f"--- {n}:\n{self.procs[n].log_tail(15)}" for n in pending))
            if pending:
                time.sleep(0.1)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            pass
        proc.popen.wait(30)

    def stop(self, *names: str, grace: float = 15.0) -> None:
        targets = [self.procs[n] for n in (names or list(self.procs))]
        for proc in targets:
            if proc.alive:
                try:
                    os.killpg(proc.popen.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for proc in targets:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(10)


class TenantGateway:
    """The gateway as many enterprises at once, for load and fault tests: a call that names an enterprise
    (``SubmitRequest``, ``ListRequests``) goes out with *that* enterprise's own credential, anything else as
    an operator. The server checks every call as usual; this only saves a test from holding a stub per
    tenant. Follows the gateway to a new port after a restart."""

    _BY_ENTERPRISE = ("SubmitRequest", "ListRequests")

    def __init__(self, fed: "Federation", name: str = "gateway"):
        self._fed, self._name = fed, name
        self._stubs: dict[tuple[str, Role, str], object] = {}
        self._endpoint = ""

    def _stub(self, role: Role, subject: str):
        self._endpoint = self._fed.procs[self._name].endpoint or self._endpoint
        key = (self._endpoint, role, subject)
        if key not in self._stubs:
            self._stubs[key] = client.gateway(self._endpoint, self._fed.credential(role, subject),
                                              ca=self._fed._ca_file)
        return self._stubs[key]

    def __getattr__(self, method: str):
        def call(request, *args, **kwargs):
            if method in self._BY_ENTERPRISE and request.enterprise_id:
                stub = self._stub(Role.ENTERPRISE, request.enterprise_id)
            else:
                stub = self._stub(Role.OPERATOR, "tests")
            return getattr(stub, method)(request, *args, **kwargs)
        return call
