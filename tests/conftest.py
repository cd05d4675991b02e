"""Shared fixtures: real SQLite and PostgreSQL databases for the storage layer (nothing mocked).

PostgreSQL: the server at ``postgresql+psycopg2://postgres@127.0.0.1:5432`` (override with
``CRYPTO_ML_TEST_PG_URL``); every test gets a brand-new database, dropped afterwards. An unreachable
server skips those tests locally but fails them when ``CI=true``.
"""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def pytest_configure(config):
    """Nothing a test writes lands in the checkout's .airflow/ or the user's ~/airflow.

    Set before collection, since importing some modules (the Celery app) resolves default paths.
    """
    import tempfile

    base = tempfile.mkdtemp(prefix="crypto-ml-tests-")
    os.environ["AIRFLOW_HOME"] = os.path.join(base, "airflow")
    os.environ["CRYPTO_ML_HOME"] = os.path.join(base, "crypto_ml")
    os.environ["CRYPTO_ML_DATABASE_URL"] = f"sqlite:///{os.path.join(base, 'crypto_ml.db')}"
    # Every Airflow process a test starts reads this checkout's DAGs and airflow.cfg, whatever the
    # shell had (what scripts/setup.sh exports for CI, also for a bare `pytest`).
    from crypto_ml.config import project_root

    root = project_root()
    os.environ["CRYPTO_ML_ROOT"] = str(root)
    os.environ["AIRFLOW_CONFIG"] = str(root / "airflow.cfg")
    # In-process Airflow (dag.test, the api-server app, CLI calls) runs the development defaults;
    # airflow.cfg carries production's (CeleryExecutor, FAB), which tests/stack/ starts for real.
    os.environ["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    os.environ["AIRFLOW__CORE__AUTH_MANAGER"] = (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    config._crypto_ml_tmp = base


def pytest_unconfigure(config):
    import shutil

    base = getattr(config, "_crypto_ml_tmp", None)
    if base:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """URL of a fresh SQLite file database (engine disposed afterwards)."""
    from crypto_ml.storage import dispose_engine

    url = f"sqlite:///{tmp_path / 'crypto_ml.db'}"
    yield url
    dispose_engine(url)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the PostgreSQL server's maintenance database; skip (fail in CI) when unreachable."""
    url = make_url(os.environ.get("CRYPTO_ML_TEST_PG_URL") or DEFAULT_PG_URL)
    if not url.database:
        url = url.set(database="postgres")
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
        message = (
            f"PostgreSQL not reachable at {url.render_as_string(hide_password=True)}: "
            f"{str(exc).strip().splitlines()[0]}; start it or set CRYPTO_ML_TEST_PG_URL"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_url(pg_server_url) -> str:
    """URL of a brand-new PostgreSQL database, dropped (WITH FORCE) after the test."""
    from crypto_ml.storage import dispose_engine

    name = f"crypto_ml_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
        yield url
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """A fresh database URL, once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
