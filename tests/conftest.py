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
    # The suite tests trading mechanics (orders, limits, exactly-once, faults) with models fitted on
    # the fly, which no training promoted: the promotion gate is off for them. Its own tests
    # (tests/trading/test_promotion_gate.py, tests/evaluation/test_promotion.py) test the default, on.
    os.environ["CRYPTO_ML_PROMOTION_REQUIRED"] = "0"
    # Every Airflow process a test starts reads this checkout's DAGs and airflow.cfg, whatever the
    # shell had (what scripts/setup.sh exports for CI, also for a bare `pytest`).
    from crypto_ml.settings.paths import project_root

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


# -- the two lanes --------------------------------------------------------------------------------
#: Fixtures that bring a server, a subprocess or an Airflow stack: a test using one is an
#: integration test (as Airflow marks its own: ``@pytest.mark.integration``).
INTEGRATION_FIXTURES = frozenset(
    {
        "pg_server_url",
        "pg_url",  # PostgreSQL
        "broker",
        "fault_broker",
        "embedded_broker",
        "engine_env",
        "start_worker",  # engine workers, brokers
        "airflow_env",
        "engine_worker",
        "run_dag",  # `airflow dags test` and a real engine worker
        "redis_prefix",
        "start_engine_worker",
        "deployment",  # tests/operators: the same, on PostgreSQL + Redis
        "owned_servers",
        "celery_stack",
        "master_run",  # the production shape on this machine
    }
)
#: Folders whose every test starts servers or containers.
INTEGRATION_DIRS = ("tests/stack/", "tests/deploy/")
#: Markers that imply the integration lane.
INTEGRATION_MARKERS = frozenset({"postgres", "docker", "slow"})
#: Test files that start a subprocess or a server without an integration fixture (the unit lane's
#: guard names any file missing here: `scripts/test.sh --fast` fails on it).
INTEGRATION_FILES = frozenset(
    {
        "tests/dags/test_dag_integrity.py",
        "tests/commands/test_data.py",
        "tests/data/test_market_setting.py",
        "tests/markets/test_markets_stack.py",
        "tests/markets/test_parse_matrix.py",
        "tests/pipeline/test_fanout.py",
        "tests/test_cli.py",
        "tests/pipeline/test_preload.py",
        "tests/test_shell.py",
        "tests/web/test_web_browser.py",
        "tests/web/test_plugin.py",
        "tests/hooks/test_market.py",
        "tests/engine/test_engine_unit.py",
        "tests/engine/test_tf_neighbour.py",
        "tests/forecasting/test_lstm.py",
        "tests/operators/test_custom_dag.py",
        "tests/commands/test_models.py",
        "tests/pipeline/test_engine_wait.py",
        "tests/pipeline/test_triggers.py",
        "tests/stack/test_probe.py",
        "tests/docs/test_docs_build.py",
        "tests/docs/test_getting_started.py",
        "tests/commands/test_trigger.py",
    }
)
#: Heavy computations (coverage over many random walks, property tests over many paths, the LSTM
#: trained for real): marked ``slow``, so in the full suite only. ``file::test`` (any parameters).
SLOW_TESTS = frozenset(
    {
        "tests/evaluation/test_backtest_intervals.py::test_coverage_on_random_walks_of_known_distribution",
        "tests/trading/test_risk.py::test_capital_at_risk_never_exceeds_capital_on_synthetic_paths",
        "tests/trading/test_risk.py::test_losses_on_sold_positions_do_not_free_room_on_the_paper_ledger",
        "tests/forecasting/test_intervals.py::test_ar_and_drift_intervals_cover_a_random_walk_too",
        "tests/forecasting/test_intervals.py::test_naive_intervals_cover_a_random_walk_at_the_nominal_level",
        "tests/evaluation/test_strategy.py::test_nothing_before_the_jump_day_knows_about_the_jump",
        "tests/storage/test_model_store.py::test_lstm_round_trip_through_the_store_without_pickle",
        "tests/forecasting/test_update.py::test_lstm_update_moves_the_window",
        "tests/settings/test_env_settings.py::test_no_two_modules_read_one_variable_for_different_things",
    }
)


#: Commands libraries run to ask the system, harmless in a unit test.
LIBRARY_PROBES = frozenset({"uname", "file", "lscpu", "getconf", "ldconfig", "fc-list", "nvidia-smi"})


def _is_integration(item) -> bool:
    path = os.path.relpath(str(item.path), os.path.dirname(os.path.dirname(__file__))).replace(os.sep, "/")
    return (
        path.startswith(INTEGRATION_DIRS)
        or path in INTEGRATION_FILES
        or bool(INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())))
        or any(m.name in INTEGRATION_MARKERS for m in item.iter_markers())
    )


def _is_slow(item) -> bool:
    path = os.path.relpath(str(item.path), os.path.dirname(os.path.dirname(__file__))).replace(os.sep, "/")
    return f"{path}::{item.originalname}" in SLOW_TESTS or (
        path.startswith("tests/forecasting/") and "[lstm" in item.nodeid
    )


def pytest_collection_modifyitems(config, items):
    """Mark every integration test (``-m "not integration"`` is the unit lane: scripts/test.sh --fast)."""
    for item in items:
        if _is_slow(item) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        if _is_integration(item) and not item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_lane_guard(request, monkeypatch):
    """In the unit lane (``CRYPTO_ML_UNIT_LANE=1``, set by ``scripts/test.sh --fast``) a test that
    starts a subprocess or connects to a service port fails, naming what to mark: the lane stays
    what it says (no server, no subprocess, no Airflow stack)."""
    if os.environ.get("CRYPTO_ML_UNIT_LANE") != "1" or request.node.get_closest_marker("integration"):
        yield
        return
    import socket
    import subprocess

    where = request.node.nodeid

    real_popen = subprocess.Popen.__init__

    def no_subprocess(self, *args, **kwargs):
        argv = args[0] if args else kwargs.get("args")
        name = os.path.basename(str(argv[0] if isinstance(argv, (list, tuple)) else str(argv).split()[0]))
        if (
            name in LIBRARY_PROBES
        ):  # a library asking the system (platform.processor(): uname -p; platform.architecture(): file -b)
            return real_popen(self, *args, **kwargs)
        pytest.fail(
            f"{where}: a unit test started a subprocess ({argv!r}); "
            "use an integration fixture or add its file to tests/conftest.py INTEGRATION_FILES"
        )

    real_connect = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and address[1] in (5432, 6379, 5672):
            pytest.fail(
                f"{where}: a unit test connected to a service ({address[0]}:{address[1]}); mark it "
                "integration (tests/conftest.py)"
            )
        return real_connect(self, address)

    monkeypatch.setattr(subprocess.Popen, "__init__", no_subprocess)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
