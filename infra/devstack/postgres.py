"""A private PostgreSQL cluster for development and tests: initdb + pg_ctl, loopback only.

Debian's ``postgresql`` package is used for the binaries only (its own ``main`` cluster is not
touched). PostgreSQL refuses to run as root, so when we are root every server-side command runs as
the ``postgres`` OS user through ``runuser -u postgres --`` and the data directory is chowned to it;
that user must be able to traverse every parent directory of ``data_dir`` (pytest's ``tmp_path``
under ``/tmp/pytest-of-root`` is mode 0700: it cannot). ``PostgresServer(None)`` picks a fresh
directory under /tmp, which always works.

    with PostgresServer(None) as pg:
        engine = sqlalchemy.create_engine(pg.url)               # .../metrofed
        other = sqlalchemy.create_engine(pg.create_database("test_outbox"))
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ._proc import free_port, log, pid_alive, port_is_free, require_free_port, stop_group, tail

PG_USER = "postgres"
DEFAULT_DATABASE = "metrofed"
_CONF_NAME = "devstack.conf"


def _version_key(path: str) -> tuple:
    m = re.search(r"/postgresql/([\d.]+)/bin", path)
    return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)


def _find_bin_dir() -> Path | None:
    candidates = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
                  if os.path.exists(os.path.join(os.path.dirname(p), "pg_ctl"))]
    if candidates:
        return Path(sorted(candidates, key=_version_key)[-1])
    initdb = shutil.which("initdb")  # non-Debian layouts
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def ensure_postgres_binaries() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres``; installs Debian's postgresql if absent."""
    found = _find_bin_dir()
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL server binaries not found and not root to install them: "
                           "apt-get install -y postgresql")
    log("PostgreSQL binaries not found: apt-get update && apt-get install -y postgresql "
        "(first run only, ~1 min)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        t0 = time.monotonic()
        res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}")
        log(f"{' '.join(cmd[:2])}: done in {time.monotonic() - t0:.1f}s")
    found = _find_bin_dir()
    if not found:
        raise RuntimeError("installed postgresql but found no /usr/lib/postgresql/*/bin/initdb")
    return found


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_cmd(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if _as_root() else cmd


def postgres_user_can_reach(path: Path | str) -> bool:
    """True when the server's OS user can traverse to ``path`` (always true when not root)."""
    if not _as_root():
        return True
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    return subprocess.run(["runuser", "-u", PG_USER, "--", "test", "-x", str(p)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


class PostgresServer:
    """A throwaway cluster: trust auth on 127.0.0.1 only, socket inside ``data_dir``, fsync off."""

    def __init__(self, data_dir: Path | str | None = None, port: int | None = None):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        self._want_port = port
        self.port: int | None = port
        self.bin_dir: Path | None = None
        self.pid: int | None = None
        self.startup_seconds: float | None = None

    # -- paths / urls --------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def url_for(self, database: str) -> str:
        if self.port is None:
            raise RuntimeError("postgres not started")
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``metrofed`` database."""
        return self.url_for(DEFAULT_DATABASE)

    @property
    def dsn(self) -> str:
        """libpq/psycopg DSN of the ``metrofed`` database (no SQLAlchemy driver prefix)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{DEFAULT_DATABASE}"

    def _run(self, cmd: list[str], what: str) -> str:
        res = subprocess.run(_pg_cmd(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, cwd="/")
        if res.returncode != 0:
            raise RuntimeError(f"{what} failed ({' '.join(cmd)}):\n{res.stdout[-3000:]}\n"
                               f"tail of {self.log_path}:\n{tail(self.log_path)}")
        return res.stdout

    # -- lifecycle -----------------------------------------------------------------------------
    def _prepare_dir(self) -> None:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="metrofed-pg-", dir="/tmp"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # data_dir itself is chowned below; every directory above it must be traversable.
        if not postgres_user_can_reach(self.data_dir.parent):
            raise RuntimeError(
                f"the '{PG_USER}' OS user cannot traverse to {self.data_dir} (a parent directory "
                "is not world-executable, e.g. pytest's /tmp/pytest-of-root). Use a directory "
                "under /tmp or pass data_dir=None.")
        if _as_root():
            shutil.chown(self.data_dir, PG_USER, PG_USER)
            self.data_dir.chmod(0o700)

    def _conf_text(self) -> str:
        return "\n".join([
            "# written by infra/devstack/postgres.py on every start",
            "listen_addresses = '127.0.0.1'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.data_dir}'",
            # a test/dev cluster: durability traded for speed
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "max_connections = 200",
            "shared_buffers = 64MB",
            "max_wal_size = 256MB",
            "log_min_messages = warning",
            "log_min_error_statement = error",
            "",
        ])

    def _write_file(self, path: Path, text: str) -> None:
        path.write_text(text)
        if _as_root():
            shutil.chown(path, PG_USER, PG_USER)

    def _previous_port(self) -> int | None:
        conf = self.pgdata / _CONF_NAME
        if conf.is_file():
            m = re.search(r"^port = (\d+)", conf.read_text(), re.M)
            if m:
                return int(m.group(1))
        return None

    def start(self, timeout: float = 60) -> "PostgresServer":
        if self.pid and pid_alive(self.pid):
            return self
        t0 = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start(self, timeout: float) -> None:
        self.bin_dir = ensure_postgres_binaries()
        self._prepare_dir()
        if self.port is None:
            prev = self._previous_port()
            self.port = prev if prev and port_is_free(prev) else free_port()
        require_free_port(self.port, "postgres")

        if not (self.pgdata / "PG_VERSION").is_file():
            self._run([str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "-U", PG_USER,
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
                      "initdb")
            with open(self.pgdata / "postgresql.conf", "a") as f:
                f.write(f"\ninclude_if_exists = '{_CONF_NAME}'\n")
            self._write_file(self.pgdata / "pg_hba.conf", "\n".join([
                "# written by infra/devstack/postgres.py: trust, loopback and own socket only",
                "local all all trust",
                "host  all all 127.0.0.1/32 trust",
                "",
            ]))
        self._write_file(self.pgdata / _CONF_NAME, self._conf_text())
        if _as_root() and not self.log_path.exists():
            self._write_file(self.log_path, "")
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log_path),
                   "-w", "-t", str(int(max(5, timeout))), "start"], "pg_ctl start")
        self.pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        self.create_database(DEFAULT_DATABASE)

    def _connect(self, database: str = "postgres"):
        import psycopg
        return psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=database,
                               autocommit=True, connect_timeout=10)

    def create_database(self, name: str, *, replace: bool = False) -> str:
        """Create database ``name`` (kept if it exists, unless ``replace``); return its URL."""
        from psycopg import sql

        with self._connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (name,)).fetchone() is not None
            if exists and replace:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                exists = False
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))

    def stop(self, timeout: float = 20, *, cleanup: bool | None = None) -> None:
        """``pg_ctl stop -m fast``; SIGKILL if that fails. ``cleanup`` (default: when the directory
        was our own temp dir) removes ``data_dir`` afterwards."""
        if self.data_dir is not None and self.bin_dir is not None and \
                (self.pgdata / "postmaster.pid").exists():
            res = subprocess.run(_pg_cmd([str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata),
                                          "-m", "fast", "-w", "-t", str(int(timeout)), "stop"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 cwd="/")
            if res.returncode != 0 and self.pid and pid_alive(self.pid):
                log(f"pg_ctl stop failed, killing postmaster {self.pid}: {res.stdout.strip()}")
                stop_group(self.pid, 5)
        elif self.pid and pid_alive(self.pid):
            stop_group(self.pid, timeout)
        self.pid = None
        if (cleanup if cleanup is not None else self._own_dir) and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if self._own_dir:
                self.data_dir = None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, data_dir={str(self.data_dir)!r})"


__all__ = ["PostgresServer", "ensure_postgres_binaries", "postgres_user_can_reach",
           "DEFAULT_DATABASE"]
