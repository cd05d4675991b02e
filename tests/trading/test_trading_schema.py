"""Migration 0002 (paper ledger) builds exactly the ORM schema on SQLite and PostgreSQL, and downgrades."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from crypto_ml.storage import Base, current_revision, get_engine, migrate
from crypto_ml.storage.db import _alembic_config

LEDGER = {"paper_orders", "paper_fills", "paper_positions"}
HEAD = "0006_interval_reason"  # the newest migration (the ledger is 0002)


def test_0002_matches_the_models(db_url):
    assert migrate(db_url) == HEAD
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
        fks = inspect(conn).get_foreign_keys("paper_fills")
    assert diff == []
    assert LEDGER <= tables
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert [(fk["referred_table"], fk["constrained_columns"]) for fk in fks] == [
        ("paper_orders", ["idempotency_key"])
    ]


def test_0002_downgrades_to_0001(db_url):
    migrate(db_url)
    with get_engine(db_url).begin() as conn:
        command.downgrade(_alembic_config(conn), "0001_initial")
    assert current_revision(db_url) == "0001_initial"
    with get_engine(db_url).connect() as conn:
        assert not LEDGER & set(inspect(conn).get_table_names())
    assert migrate(db_url) == HEAD
