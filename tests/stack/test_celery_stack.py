"""The CeleryExecutor stack end to end: REST API with credentials, work spread over the workers,
every prediction in PostgreSQL once, and a run that survives losing a worker of each kind."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from sqlalchemy import create_engine, text

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AIRFLOW_WORKERS = {"airflow-worker-1", "airflow-worker-2"}
FAULT_DAY = "2026-11-24T00:00:00Z"  # replays 2017-06-24


def _get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def _status(url: str, headers: dict | None = None, data: bytes | None = None) -> int:
    try:
        return _get(url, headers)[0] if data is None else urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=headers or {}, method="POST"), timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


def _flower_tasks(stack) -> dict:
    auth = base64.b64encode(f"{stack.admin_user}:{stack.admin_password}".encode()).decode()
    return _get(f"{stack.flower_url}/api/tasks?limit=100000", {"Authorization": f"Basic {auth}"})[1]


def _predictions(stack, day: str) -> list[tuple[str, int]]:
    engine = create_engine(stack.crypto_db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                text("SELECT coin, version FROM predictions WHERE as_of = :d"), {"d": day})]
    finally:
        engine.dispose()


def _coin_tis(stack, day: str) -> list[dict]:
    return [ti for ti in stack.task_instances("crypto_ml_coin") if ti["dag_run_id"].endswith(f"__{day}")]


def test_nobody_gets_in_without_credentials(celery_stack):
    base = celery_stack.base_url
    assert _status(f"{base}/api/v2/dags") == 401
    assert _status(f"{base}/api/v2/dags", {"Authorization": "Bearer not-a-token"}) in (401, 403)
    wrong = json.dumps({"username": celery_stack.admin_user, "password": "admin"}).encode()
    assert _status(f"{base}/auth/token", {"Content-Type": "application/json"}, wrong) in (401, 403)
    assert _status(celery_stack.flower_url + "/api/workers") == 401
    # The real auth manager, not the development one.
    config = celery_stack.env()
    assert config["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert celery_stack.api("GET", "/api/v2/dags?limit=1")["total_entries"] >= 2


def test_master_run_spreads_over_celery_workers_and_stores_every_prediction_once(celery_stack, master_run):
    assert master_run["state"] == "success", f"master run {master_run['run_id']} ended {master_run['state']}"
    day = "2017-06-25"
    master_tis = celery_stack.task_instances("crypto_ml_master", master_run["run_id"])
    coin_tis = _coin_tis(celery_stack, day)
    runs = {ti["dag_run_id"] for ti in coin_tis}
    assert len(runs) == 89  # every coin with data that day got its pipeline
    executed = [ti for ti in master_tis + coin_tis if ti["state"] == "success"]
    # Airflow's tasks ran on the two Airflow Celery workers, from the queue they serve.
    assert {ti["hostname"] for ti in executed} == AIRFLOW_WORKERS
    assert {ti["queue"] for ti in executed} == {"default"}
    spread = Counter(ti["hostname"] for ti in executed)
    assert min(spread.values()) >= len(executed) // 10, spread
    # Every coin that had enough history has exactly one prediction in PostgreSQL.
    predicted_coins = {ti["dag_run_id"].split("__")[0] for ti in coin_tis
                       if ti["task_id"] == "transform" and ti["state"] == "success"}
    assert len(predicted_coins) >= 85
    rows = _predictions(celery_stack, day)
    assert len(rows) == len({coin for coin, _ in rows}) == len(predicted_coins)
    assert {coin for coin, _ in rows} == predicted_coins
    # The engine's tasks ran on the engine workers (as Flower saw them), both of them.
    predicts = [t for t in _flower_tasks(celery_stack).values()
                if t.get("name") == "crypto_ml.predict" and t.get("state") == "SUCCESS"]
    workers = {t["worker"].split("@")[0] for t in predicts}
    assert workers == {"engine-1", "engine-2"}, workers
    assert len(predicts) >= len(predicted_coins)


def test_run_survives_killing_an_airflow_worker_and_an_engine_worker(celery_stack, master_run):
    stack = celery_stack
    day = "2017-06-24"
    # engine-1 comes back with a 2 s pause after storing each prediction (CRYPTO_ML_ENGINE_TEST_DELAY),
    # so the kill lands mid-task; 30 coins keep the run long enough to kill it mid-run.
    stack.restart("engine-1", {"CRYPTO_ML_ENGINE_TEST_DELAY": "2"})
    coins = sorted({coin for coin, _ in _predictions(stack, "2017-06-25")})[:30]
    run_id = stack.trigger_master(FAULT_DAY, {"coins": coins})
    # Wait until airflow-worker-1 is running tasks and engine-1 holds a prediction, then kill both.
    deadline = time.monotonic() + 600
    while True:
        running = [ti for ti in _coin_tis(stack, day) if ti["state"] == "running"
                   and ti["hostname"] == "airflow-worker-1"]
        engine_busy = [t for t in _flower_tasks(stack).values()
                       if t.get("state") == "STARTED" and str(t.get("worker", "")).startswith("engine-1@")]
        if len(running) >= 2 and engine_busy:
            break
        assert time.monotonic() < deadline, "worker 1 never ran coin tasks while engine-1 was busy"
        time.sleep(0.5)
    stack.kill("airflow-worker-1")
    stack.kill("engine-1")
    killed_tis = {(ti["dag_run_id"], ti["task_id"]) for ti in running}
    killed_engine_tasks = {t["uuid"] for t in engine_busy}

    state = stack.wait_for_run("crypto_ml_master", run_id, timeout=1500)
    assert state == "success"
    coin_tis = _coin_tis(stack, day)
    assert {ti["dag_run_id"] for ti in coin_tis if ti["task_id"] == "report"} and all(
        ti["state"] in ("success", "skipped") for ti in coin_tis), [
        (ti["dag_run_id"], ti["task_id"], ti["state"]) for ti in coin_tis if ti["state"] not in ("success", "skipped")]
    # The tasks the dead worker held were retried elsewhere and succeeded.
    by_key = {(ti["dag_run_id"], ti["task_id"]): ti for ti in coin_tis}
    assert all(by_key[key]["state"] == "success" for key in killed_tis)
    retried = [by_key[key] for key in killed_tis if by_key[key]["try_number"] >= 2]
    assert retried, f"none of the tasks on the killed worker was retried: {[by_key[k] for k in killed_tis]}"
    assert {ti["hostname"] for ti in retried} == {"airflow-worker-2"}
    # The prediction engine-1 held was redelivered to engine-2 and finished there.
    tasks = _flower_tasks(stack)
    for uuid in killed_engine_tasks:
        assert tasks[uuid]["state"] == "SUCCESS" and tasks[uuid]["worker"].startswith("engine-2@"), tasks[uuid]
    # Nothing lost, nothing twice: every coin with enough history has exactly one prediction.
    predicted_coins = {ti["dag_run_id"].split("__")[0] for ti in coin_tis
                       if ti["task_id"] == "transform" and ti["state"] == "success"}
    rows = _predictions(stack, day)
    assert predicted_coins <= set(coins) and len(predicted_coins) >= 25  # a coin may be too young a day earlier
    assert len(rows) == len(predicted_coins) and {c for c, _ in rows} == predicted_coins
