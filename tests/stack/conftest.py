"""The production shape, for real: one CeleryStack for this module's tests (started once).

PostgreSQL (``pg_server_url``) and Redis (``CRYPTO_ML_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) are the machine's servers; the stack gets its own two databases and
its own Redis key prefix, removed afterwards. Missing servers skip locally and fail with CI=true.

Fault-test settings (the production defaults are far longer): a task instance whose worker
vanished is failed (and retried) after 30 s without a heartbeat; an Airflow task message taken by a
dead worker is redelivered after 120 s, an engine message after 30 s.
"""

from __future__ import annotations

import os
import secrets

import pytest

REDIS_URL = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

FAULT_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "120",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "240",
    "CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT": "30",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url() -> str:
    from crypto_ml.celery_stack import StackConfigError, check_redis

    try:
        check_redis(REDIS_URL)
    except StackConfigError as exc:
        message = f"{exc}; start Redis or set CRYPTO_ML_TEST_REDIS_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture(scope="session")
def celery_stack(pg_server_url, redis_url, tmp_path_factory):
    """A running CeleryStack: 2 Airflow Celery workers, 2 engine workers, Flower, FAB auth."""
    from crypto_ml.celery_stack import CeleryStack, generate_secrets

    saved = {k: os.environ.get(k) for k in generate_secrets()}
    os.environ.update(generate_secrets())
    name = f"cml_stack_{os.getpid()}_{secrets.token_hex(3)}"
    stack = CeleryStack(
        pg_url=pg_server_url, redis_url=redis_url, name=name, port=_free_port(),
        flower_port=_free_port(), scheduled=False, home=tmp_path_factory.mktemp("celery-stack"),
        settings=FAULT_SETTINGS,
    )
    try:
        with stack:
            yield stack
    finally:
        stack.destroy()
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
