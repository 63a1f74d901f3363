"""Engines for SQLite (embedded default) and PostgreSQL (production), and Alembic upgrades on start."""

from __future__ import annotations

import zlib
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from metrofed import telemetry


def make_engine(url: str, *, instrument: bool = True) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL: the relay reads while the API writes
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)
    if instrument:
        telemetry.instrument_engine(engine)
    return engine


def upgrade_to_head(engine: Engine, migrations_dir: Path) -> None:
    """Runs the service's Alembic migrations on the given engine (the schema is owned by Alembic)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together must not run the same migration twice: the first takes the
            # lock, the others wait and then find the schema at head. Released at commit.
            key = zlib.crc32(f"metrofed-migrations:{migrations_dir.parent.name}".encode())
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
