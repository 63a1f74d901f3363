"""Alembic migrations against real SQLite and PostgreSQL: they run to head, are idempotent, and the
schema they build is exactly what the SQLAlchemy models declare (autogenerate finds nothing to do)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from metrofed.db.engine import upgrade_to_head
from tests.integration.conftest import CENTRE_MIGRATIONS, GATEWAY_MIGRATIONS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _services():
    from gateway.models import Base as GatewayBase
    from services.centre.models import Base as CentreBase

    return [
        pytest.param(CENTRE_MIGRATIONS, CentreBase.metadata,
                     {"capabilities", "centre_profile", "inbox", "outbox", "processed_events", "certificates"}, id="centre"),
        pytest.param(GATEWAY_MIGRATIONS, GatewayBase.metadata,
                     {"requests", "request_history", "outbox", "processed_events"}, id="gateway"),
    ]


def _head(migrations) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"{migrations}: several heads {heads}; chain the newer revision after the other"
    return heads[0]


def _diff(engine, metadata) -> list:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, metadata)


@pytest.mark.parametrize("migrations, metadata, tables", _services())
def test_upgrade_to_head_builds_the_models_schema(database_url, engine_factory, migrations, metadata, tables):
    engine = engine_factory(database_url)
    assert set(inspect(engine).get_table_names()) == set()

    upgrade_to_head(engine, migrations)

    insp = inspect(engine)
    assert set(insp.get_table_names()) == tables | {"alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head(migrations)
    # Models and migrations agree: autogenerate would produce an empty migration.
    assert _diff(engine, metadata) == []
    # The outbox index the relay's "unsent rows" query relies on, and the dedupe key.
    outbox_indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes("outbox")}
    assert outbox_indexes.get("ix_outbox_sent_at") == ["sent_at"]
    assert outbox_indexes.get("ix_outbox_failed_at") == ["failed_at"]  # `metrofed outbox dead`
    assert insp.get_pk_constraint("processed_events")["constrained_columns"] == ["event_id"]


@pytest.mark.parametrize("migrations, metadata, tables", _services())
def test_upgrade_is_idempotent(database_url, engine_factory, migrations, metadata, tables):
    engine = engine_factory(database_url)
    upgrade_to_head(engine, migrations)
    upgrade_to_head(engine, migrations)  # a restart: nothing to do, nothing breaks
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    assert _diff(engine, metadata) == []


@pytest.mark.parametrize("migrations, metadata, tables", _services())
def test_diff_detects_a_drifted_schema(database_url, engine_factory, migrations, metadata, tables):
    """The comparison above can fail: drop a column behind Alembic's back and it is reported."""
    engine = engine_factory(database_url)
    upgrade_to_head(engine, migrations)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE processed_events DROP COLUMN processed_at"))
    diff = _diff(engine, metadata)
    assert any(d[0] == "add_column" and d[2] == "processed_events" and d[3].name == "processed_at"
               for d in diff if isinstance(d, tuple)), diff


@pytest.mark.parametrize("migrations, metadata, tables", _services())
def test_downgrade_to_base_removes_every_table(database_url, engine_factory, migrations, metadata, tables):
    from alembic import command
    from alembic.config import Config

    engine = engine_factory(database_url)
    upgrade_to_head(engine, migrations)
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_to_head(engine, migrations)  # and back up again
    assert _diff(engine, metadata) == []
