"""The production shape, for real: one CeleryStack for this folder's tests (started once).

The stack runs on servers the session owns, so the fault drills may stop them: its own
``redis-server`` (append-only file on) and its own PostgreSQL cluster (``initdb``), each on a free
port, removed afterwards (``tests/helpers/servers.py``). Missing binaries skip locally and fail with
CI=true.

Fault-test settings, for the kill -9 drills (the production defaults are far longer): a task
instance whose worker vanished is failed (and retried) after 30 s without a heartbeat; an Airflow
task message taken by a dead worker is redelivered after 60 s (every Airflow task of the pipeline
lasts seconds: the waits run in the triggerer); an engine message after 30 s; a scheduler or
triggerer whose heartbeat is 15 s old counts as dead (its tasks are adopted, its triggers
reassigned), checked every 15 s. A task still queued after an outage is queued again by the
shipped setting (airflow.cfg: task_queued_timeout), not a test one.

``CRYPTO_ML_DRILL_SETTINGS=production`` runs the stack with none of these: exactly what
``crypto-ml stack``, docker-compose.yaml and the chart ship (for the recovery table in the README:
``CRYPTO_ML_DRILL_SETTINGS=production pytest tests/stack/test_fault_drills.py -k "baseline or redis
or postgres"``).
"""

from __future__ import annotations

import os
import secrets

import pytest

FAULT_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "60",
    "CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
}


def drill_settings() -> dict[str, str]:
    """The settings the stack tests run with: FAULT_SETTINGS, or none (production)."""
    choice = os.environ.get("CRYPTO_ML_DRILL_SETTINGS", "fault")
    if choice not in ("fault", "production"):
        raise pytest.UsageError(f"CRYPTO_ML_DRILL_SETTINGS={choice!r}: use 'fault' (default) or 'production'")
    return dict(FAULT_SETTINGS) if choice == "fault" else {}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def owned_servers():
    """``{"redis": OwnedRedis, "postgres": OwnedPostgres}``, running; removed afterwards."""
    from tests.helpers.servers import OwnedPostgres, OwnedRedis, ServerUnavailable

    made = []
    try:
        for kind in (OwnedRedis, OwnedPostgres):
            server = kind()
            made.append(server)
            server.start()
    except ServerUnavailable as exc:
        for server in made:
            server.close()
        _unavailable(f"{exc}; the stack tests start their own servers")
    yield {"redis": made[0], "postgres": made[1]}
    for server in made:
        server.close()


@pytest.fixture(scope="session")
def celery_stack(owned_servers, tmp_path_factory):
    """A running CeleryStack: 2 Airflow Celery workers, 2 engine workers, Flower, FAB auth."""
    from crypto_ml.stack.celery import CeleryStack, generate_secrets

    saved = {k: os.environ.get(k) for k in generate_secrets()}
    os.environ.update(generate_secrets())
    name = f"cml_stack_{os.getpid()}_{secrets.token_hex(3)}"
    stack = CeleryStack(
        pg_url=owned_servers["postgres"].url,
        redis_url=owned_servers["redis"].url,
        name=name,
        port=_free_port(),
        flower_port=_free_port(),
        scheduled=False,
        home=tmp_path_factory.mktemp("celery-stack"),
        settings=drill_settings(),
    )
    try:
        with stack:
            yield stack
    finally:
        try:
            stack.destroy()
        except Exception:  # noqa: BLE001 - the servers themselves are removed next
            pass
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: The integration run's day (replays the history of 2017-06-25: 89 coins have data).
RUN_DAY = "2026-11-25T00:00:00Z"


@pytest.fixture(scope="session")
def master_run(celery_stack) -> dict:
    """``crypto_ml_master`` triggered through the REST API over every coin of one day, finished.

    ``{"run_id", "state", "seconds"}``; the fault test depends on it, so it runs on all four workers.
    """
    import time

    started = time.monotonic()
    run_id = celery_stack.trigger_master(RUN_DAY)
    state = celery_stack.wait_for_run("crypto_ml_master", run_id, timeout=1500)
    return {"run_id": run_id, "state": state, "seconds": time.monotonic() - started}
