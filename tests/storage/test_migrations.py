"""Migrations build exactly the ORM schema, on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from crypto_ml.storage import Base, current_revision, database_url, get_engine, migrate


def _head() -> str:
    """The newest Alembic revision shipped with the package."""
    from alembic.script import ScriptDirectory

    from crypto_ml.storage.db import MIGRATIONS_DIR

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def test_migrations_match_orm_schema(db_url):
    assert current_revision(db_url) is None
    assert migrate(db_url) == _head()
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
        alembic_says = MigrationContext.configure(conn).get_current_revision()
    assert current_revision(db_url) == alembic_says == _head()  # our plain read agrees with Alembic
    assert diff == []
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


def test_migrate_twice_is_a_noop(db_url):
    migrate(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO prices (coin, date, open, high, low, close, source) "
                "VALUES ('btc', '2017-01-01', 1, 1, 1, 1, 't')"
            )
        )
    assert migrate(db_url) == _head()
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM prices")).scalar_one() == 1
        assert conn.execute(text("SELECT synthetic FROM prices")).scalar_one() in (False, 0)


def test_migrate_at_head_reads_the_version_only(db_url, monkeypatch):
    """Every pipeline task calls ``migrate``: at head it runs no Alembic upgrade (and so takes no
    lock); on an empty database, or one not at the package's head, it upgrades."""
    from alembic import command

    from crypto_ml.storage import db

    assert db.head_revision() == _head()
    upgrades = []
    real_upgrade = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda *a, **kw: (upgrades.append(a[1]), real_upgrade(*a, **kw)))
    assert migrate(db_url) == _head()
    assert upgrades == ["head"]
    assert migrate(db_url) == _head()
    assert upgrades == ["head"]  # at head: no second upgrade
    # ... and one query: the version table's rows (no Alembic context, no inspection).
    from sqlalchemy import event

    statements = []
    engine = get_engine(db_url)
    listen = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert migrate(db_url) == _head()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert statements == ["SELECT version_num FROM alembic_version"], statements
    # Two stamped revisions (a branch our migrations never make) are refused, not guessed.
    import pytest

    with get_engine(db_url).begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0000_a_branch')"))
    with pytest.raises(RuntimeError, match="stamped with 2 revisions"):
        current_revision(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0000_a_branch'"))
    # A database whose revision is not the package's head (here: the head moved on) is upgraded.
    monkeypatch.setattr(db, "head_revision", lambda: "9999_a_newer_head")
    assert migrate(db_url) == _head()
    assert upgrades == ["head", "head"]


def test_sqlite_pragmas(sqlite_url):
    with get_engine(sqlite_url).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    assert get_engine(sqlite_url) is get_engine(sqlite_url)


def test_database_url_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYPTO_ML_DATABASE_URL", "postgresql://db.example/crypto")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow/metadata")
    assert database_url("sqlite:///x.db") == "sqlite:///x.db"
    assert database_url() == "postgresql://db.example/crypto"
    monkeypatch.delenv("CRYPTO_ML_DATABASE_URL")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'crypto_ml.db'}"
    assert Path(tmp_path / "home").is_dir()


def test_database_url_from_an_airflow_connection(monkeypatch, pg_server_url):
    """``AIRFLOW_CONN_CRYPTO_ML_DB`` (Airflow's own convention) names the project DB."""
    from sqlalchemy.engine import make_url

    from crypto_ml.storage import database_url, dispose_engine, get_engine

    monkeypatch.delenv("CRYPTO_ML_DATABASE_URL", raising=False)
    server = make_url(pg_server_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRYPTO_ML_DB", f"postgres://{server.username}@{server.host}:{server.port}/postgres"
    )
    url = database_url()
    assert url == f"postgresql+psycopg2://{server.username}@{server.host}:{server.port}/postgres"
    with get_engine(url).connect() as conn:
        assert conn.exec_driver_sql("select current_database()").scalar() == "postgres"
    dispose_engine(url)
    monkeypatch.setenv("CRYPTO_ML_DATABASE_URL", "sqlite:///x.db")
    assert database_url() == "sqlite:///x.db"  # the explicit variable wins
