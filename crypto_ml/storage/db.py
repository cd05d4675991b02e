"""Engines, sessions, migrations and the dialect-aware idempotent upsert.

The project keeps its data in its *own* database: a SQLite file by default, PostgreSQL in production
(``CRYPTO_ML_DATABASE_URL``). It never falls back to Airflow's metadata database.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, literal_column, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session

from crypto_ml.settings.paths import airflow_home

ENV_VAR = "CRYPTO_ML_DATABASE_URL"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Rows per upsert batch; keeps the SQLite existing-key lookup under its bound-parameter limit.
CHUNK_SIZE = 500
#: Key of the PostgreSQL advisory lock that serialises concurrent ``migrate`` calls.
_MIGRATE_LOCK_KEY = 0x63727970746F6D6C  # "cryptoml"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


#: Airflow Connection id of the project database (see :func:`database_url`).
CONN_ID = "crypto_ml_db"
_conn_cache: dict[str, str | None] = {}


def database_url(url: str | None = None) -> str:
    """Resolve the database URL.

    Parameters
    ----------
    url
        Explicit URL; wins over everything else.

    Returns
    -------
    str
        ``url``, else ``$CRYPTO_ML_DATABASE_URL``, else the Airflow Connection ``crypto_ml_db``
        (from ``AIRFLOW_CONN_CRYPTO_ML_DB`` or Airflow's secrets backends; looked up only inside an
        Airflow process or when that variable is set, since importing Airflow costs seconds), else
        ``sqlite:///<AIRFLOW_HOME>/crypto_ml.db`` (the folder is created). Never
        Airflow's own metadata database.
    """
    if url:
        return url
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    from_airflow = airflow_connection_url(CONN_ID)
    if from_airflow:
        return from_airflow
    return default_database_url()


def default_database_url() -> str:
    """``sqlite:///<AIRFLOW_HOME>/crypto_ml.db`` (see :func:`crypto_ml.settings.paths.airflow_home`: never
    ``~/airflow``), the last resort of
    :func:`database_url` (the folder is created)."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'crypto_ml.db'}"


#: Airflow connection types → SQLAlchemy drivers.
_SCHEMES = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2", "sqlite": "sqlite"}


def airflow_connection_url(conn_id: str) -> str | None:
    """The SQLAlchemy URL of an Airflow Connection, or None when it is not defined (cached)."""
    import sys

    env_name = f"AIRFLOW_CONN_{conn_id.upper()}"
    if "airflow.sdk" not in sys.modules and not os.environ.get(env_name):
        return None
    key = f"{conn_id}|{os.environ.get(env_name, '')}"
    if key not in _conn_cache:
        from airflow.sdk import Connection

        try:
            conn = Connection.get(conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, or no API outside a task
            if type(exc).__name__ != "AirflowNotFoundException" and os.environ.get(env_name):
                raise
            _conn_cache[key] = None
        else:
            uri = conn.get_uri()
            scheme, sep, rest = uri.partition("://")
            if scheme not in _SCHEMES:
                raise ValueError(
                    f"Airflow connection {conn_id!r} has type {conn.conn_type!r}; "
                    f"the project database must be one of {sorted(set(_SCHEMES))}"
                )
            _conn_cache[key] = f"{_SCHEMES[scheme]}{sep}{rest}"
    return _conn_cache[key]


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def get_engine(url: str | None = None) -> Engine:
    """Return the engine for ``url`` (see :func:`database_url`), created once per URL.

    SQLite connections use WAL, a 30 s busy timeout and foreign keys; server connections are
    pre-pinged so a restarted database does not break pooled connections.
    """
    resolved = database_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            if make_url(resolved).get_backend_name() == "sqlite":
                engine = create_engine(resolved, connect_args={"timeout": 30})
                event.listen(engine, "connect", _sqlite_on_connect)
            else:
                engine = create_engine(resolved, pool_pre_ping=True)
            _engines[resolved] = engine
    return engine


def dispose_engine(url: str | None = None) -> None:
    """Close the pooled connections of ``url`` and forget its engine (no-op when none was made)."""
    resolved = database_url(url)
    with _lock:
        engine = _engines.pop(resolved, None)
    if engine is not None:
        engine.dispose()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on any exception."""
    session = Session(get_engine(url), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


#: Alembic's version table (its default name; the project's migrations keep it).
VERSION_TABLE = "alembic_version"


@functools.cache
def head_revision() -> str | None:
    """The newest revision of the project's migrations (read once per process; the preload reads it in
    the processes that fork tasks, so a task inherits it)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(url: str | None = None) -> str | None:
    """Upgrade the database at ``url`` to the newest schema (``alembic upgrade head``).

    Idempotent and cheap when already at head (one read of the version table: no Alembic run, no
    lock), so every pipeline task calls it. Otherwise the upgrade runs; on PostgreSQL concurrent
    callers are serialised by an advisory lock.

    Returns
    -------
    str or None
        The revision the database is at afterwards.
    """
    engine = get_engine(url)
    try:
        if (current := current_revision(url)) is not None and current == head_revision():
            return current
    except SQLAlchemyError:  # a schema the read cannot make sense of: the upgrade decides
        pass
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK_KEY})")
        command.upgrade(_alembic_config(conn), "head")
    return current_revision(url)


def current_revision(url: str | None = None) -> str | None:
    """Return the Alembic revision of the database at ``url`` (``None`` when never migrated).

    One plain read of Alembic's version table: every task's :func:`migrate` calls this, and
    Alembic's own ``MigrationContext`` cost a task process more than the rest of its database work
    (its set-up and two log lines; py-spy profile in benchmarks/results/orchestration_profile.md).
    """
    with get_engine(url).connect() as conn:
        try:
            stamped = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars().all()
        except (OperationalError, ProgrammingError):  # no version table: never migrated
            return None
    if len(stamped) > 1:
        raise RuntimeError(
            f"the database is stamped with {len(stamped)} revisions {stamped}; "
            "the project's migrations have one head"
        )
    return stamped[0] if stamped else None


@dataclass(frozen=True)
class UpsertResult:
    """How many rows an upsert inserted and how many existing rows it updated (or left alone)."""

    inserted: int = 0
    updated: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(self.inserted + other.inserted, self.updated + other.updated)


def upsert(
    conn_or_session: Connection | Session,
    model_cls: type[DeclarativeBase],
    rows: list[dict[str, Any]],
    *,
    update_columns: list[str] | None = None,
    constraint: str | None = None,
) -> UpsertResult:
    """Insert ``rows``, or update the rows that already exist, keyed on a natural key.

    Parameters
    ----------
    conn_or_session
        Connection or session; the statements join its transaction (the caller commits).
    model_cls
        ORM model of the target table.
    rows
        Dicts of column name to value, all with the same keys. Rows repeating a key within the
        call collapse to the last one.
    update_columns
        Columns to overwrite on conflict. ``None`` means every non-key column given in ``rows``;
        ``[]`` means do nothing for existing rows.
    constraint
        Name of a unique constraint of the table to key on instead of the primary key.

    Returns
    -------
    UpsertResult
        Rows inserted, and existing rows updated (``updated`` is 0 when ``update_columns == []``).

    Raises
    ------
    ValueError
        For a dialect other than SQLite or PostgreSQL, an unknown constraint or column, or rows with
        differing keys.
    """
    conn = conn_or_session.connection() if isinstance(conn_or_session, Session) else conn_or_session
    dialect = conn.dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise ValueError(f"upsert supports only PostgreSQL and SQLite, not the {dialect!r} dialect")
    if not rows:
        return UpsertResult()

    table = model_cls.__table__
    key_cols = _conflict_columns(table, constraint)
    given = list(rows[0])
    if any(set(row) != set(given) for row in rows):
        raise ValueError(f"upsert into {table.name}: every row must have the same keys as the first: {given}")
    unknown = set(given) - set(table.c.keys())
    missing_keys = [c.name for c in key_cols if c.name not in given]
    if unknown or missing_keys:
        raise ValueError(
            f"upsert into {table.name}: unknown columns {sorted(unknown)}, missing key columns {missing_keys}"
        )
    key_names = [c.name for c in key_cols]
    if update_columns is None:
        update_columns = [c for c in given if c not in key_names and not table.c[c].primary_key]
    bad = set(update_columns) - set(given)
    if bad:
        raise ValueError(f"upsert into {table.name}: update_columns {sorted(bad)} are not in the rows")

    stmt = insert(table)
    if update_columns:
        stmt = stmt.on_conflict_do_update(
            index_elements=key_cols, set_={c: stmt.excluded[c] for c in update_columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=key_cols)
    if dialect == "postgresql":
        # xmax is 0 exactly for the tuples this statement inserted; DO NOTHING returns only those.
        stmt = stmt.returning(literal_column("(xmax = 0)"))

    deduped = list({tuple(row[k] for k in key_names): row for row in rows}.values())
    result = UpsertResult()
    for start in range(0, len(deduped), CHUNK_SIZE):
        chunk = deduped[start : start + CHUNK_SIZE]
        # executemany: SQLAlchemy batches the rows ("insertmanyvalues") with a cached statement.
        if dialect == "postgresql":
            flags = conn.execute(stmt, chunk).scalars().all()
            inserted = sum(bool(f) for f in flags)
            result += UpsertResult(inserted, len(flags) - inserted)
        else:
            keys = [tuple(row[k] for k in key_names) for row in chunk]
            n_existing = len(conn.execute(select(*key_cols).where(tuple_(*key_cols).in_(keys))).all())
            conn.execute(stmt, chunk)
            result += UpsertResult(len(chunk) - n_existing, n_existing if update_columns else 0)
    return result


def _conflict_columns(table: Any, constraint: str | None) -> list[Any]:
    if constraint is None:
        return list(table.primary_key.columns)
    for cons in table.constraints:
        if cons.name == constraint and cons is not table.primary_key:
            return list(cons.columns)
    names = sorted(str(c.name) for c in table.constraints if c is not table.primary_key)
    raise ValueError(f"table {table.name} has no unique constraint {constraint!r}; it has {names}")


def count_rows(table_name: str, url: str | None = None) -> int:
    """Return the number of rows in one of the storage tables."""
    from crypto_ml.storage.models import Base

    table = Base.metadata.tables.get(table_name)
    if table is None:
        raise ValueError(f"unknown table {table_name!r}; known: {sorted(Base.metadata.tables)}")
    with get_engine(url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
