"""The CeleryExecutor stack end to end: REST API with credentials, work spread over the Airflow
workers and the engine workers, every coin's prediction in PostgreSQL once."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter

import pytest

from crypto_ml.storage import get_predictions

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AIRFLOW_WORKERS = {"airflow-worker-1", "airflow-worker-2"}


def _status(url: str, headers: dict | None = None, data: bytes | None = None) -> int:
    """The HTTP status of a GET (or a POST of ``data``), errors included."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


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
    succeeded = [ti for ti in master_tis + coin_tis if ti["state"] == "success"]
    # The submit and the waits start and end in the triggerer, and the store branch is empty (the
    # scheduler marks it done): no worker ran them (no hostname).
    in_triggerer = {ti["task_id"] for ti in succeeded if not ti["hostname"]}
    assert in_triggerer <= {
        "submit_prediction",
        "wait_for_prediction",
        "store_prediction",
        "wait_for_coin_runs",
    }, in_triggerer
    assert {"submit_prediction", "wait_for_prediction", "store_prediction"} <= in_triggerer
    executed = [ti for ti in succeeded if ti["hostname"]]
    # Airflow's other tasks ran on the two Airflow Celery workers, from the queue they serve.
    assert {ti["hostname"] for ti in executed} == AIRFLOW_WORKERS
    assert {ti["queue"] for ti in executed} == {"default"}
    spread = Counter(ti["hostname"] for ti in executed)
    assert min(spread.values()) >= len(executed) // 10, spread
    # Every coin that had enough history has exactly one prediction in PostgreSQL.
    predicted_coins = {
        ti["dag_run_id"].split("__")[0]
        for ti in coin_tis
        if ti["task_id"] == "transform" and ti["state"] == "success"
    }
    assert len(predicted_coins) >= 85
    rows = get_predictions(as_of=day, url=celery_stack.crypto_db_url)
    assert len(rows) == len({r["coin"] for r in rows}) == len(predicted_coins)
    assert {r["coin"] for r in rows} == predicted_coins
    # The engine's tasks ran on the engine workers (as Flower saw them), both of them.
    predicts = [
        t
        for t in celery_stack.flower_tasks().values()
        if t.get("name") == "crypto_ml.predict" and t.get("state") == "SUCCESS"
    ]
    workers = {t["worker"].split("@")[0] for t in predicts}
    assert workers == {"engine-1", "engine-2"}, workers
    assert len(predicts) >= len(predicted_coins)


def test_flower_shows_the_engine_workers_and_each_queue_apart(celery_stack, master_run):
    """Operators watch the engine in Flower: both engine workers, each consuming the predict, train
    and heavy queues, and the queues listed one by one (heavy work apart from predictions)."""
    workers = celery_stack.flower("/api/workers", refresh="true")
    engine = {name.split("@")[0]: info for name, info in workers.items() if name.startswith("engine-")}
    assert set(engine) == {"engine-1", "engine-2"}, sorted(workers)
    for name, info in engine.items():
        assert {q["name"] for q in info["active_queues"]} == {"predict", "train", "heavy"}, name
    queues = {q["name"]: q["messages"] for q in celery_stack.flower("/api/queues/length")["active_queues"]}
    assert {"predict", "train", "heavy"} <= set(queues), queues


def test_a_failed_fan_out_fails_the_master_run_and_the_summary_still_runs(celery_stack, master_run):
    """A coin list naming a coin without data: the fan-out fails once (no retry can help), the
    summary runs anyway, and the watcher marks the master run failed (it is not green)."""
    run_id = celery_stack.trigger_master("2026-11-23T00:00:00Z", {"coins": ["bitcoin", "no-such-coin"]})
    assert celery_stack.wait_for_run("crypto_ml_master", run_id, timeout=600) == "failed"
    tis = {ti["task_id"]: ti for ti in celery_stack.task_instances("crypto_ml_master", run_id)}
    assert tis["poll_new_data"]["state"] == "success"
    assert (tis["coin_runs"]["state"], tis["coin_runs"]["try_number"]) == ("failed", 1)
    assert tis["run_coin_pipelines"]["state"] == "upstream_failed"
    assert tis["summarize"]["state"] == "success"
    assert tis["check_all_coins"]["state"] == "failed"
