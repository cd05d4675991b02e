"""A run on the Celery stack survives losing an Airflow worker and an engine worker mid-run:
both are SIGKILLed (whole process groups) while they hold work; the run still succeeds, with
nothing lost and nothing written twice. Runs after the other stack tests (file order), since it
leaves one worker of each kind."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from crypto_ml.storage import get_predictions

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FAULT_DAY = "2026-11-24T00:00:00Z"  # replays 2017-06-24
HOLD = 20  # seconds engine-1 holds each prediction before returning it


def _coin_tis(stack, day: str) -> list[dict]:
    return [ti for ti in stack.task_instances("crypto_ml_coin") if ti["dag_run_id"].endswith(f"__{day}")]


def _until(stack, run_id: str, what: str, probe, timeout: float = 300):
    """``probe()``'s first truthy answer, polled every 0.5 s; fails at once, naming ``what``, when
    the master run ends first, and after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        state = stack.api("GET", f"/api/v2/dags/crypto_ml_master/dagRuns/{run_id}")["state"]
        assert state in ("queued", "running"), f"the master run ended ({state}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.5)


def test_run_survives_killing_an_airflow_worker_and_an_engine_worker(celery_stack, master_run):
    stack = celery_stack
    day = "2017-06-24"
    # engine-1 comes back with a pause of HOLD seconds after storing each prediction
    # (CRYPTO_ML_ENGINE_TEST_DELAY), so it holds each prediction long enough for the kill to land
    # mid-task; HOLD stays under the engine's 30 s visibility timeout, so a live worker's task is
    # never redelivered. 30 coins keep the run long enough to kill it mid-run.
    stack.restart("engine-1", {"CRYPTO_ML_ENGINE_TEST_DELAY": str(HOLD)})
    coins = sorted({r["coin"] for r in get_predictions(as_of="2017-06-25", url=stack.crypto_db_url)})[:30]
    run_id = stack.trigger_master(FAULT_DAY, {"coins": coins})
    # Each kill waits for its own moment, so neither depends on how the two workers' work happens
    # to overlap: engine-1 dies while it holds a prediction it started less than HOLD / 2 ago (its
    # first one comes early in the run), then airflow-worker-1 as soon as it runs a coin task.
    engine_busy = _until(
        stack,
        run_id,
        "engine-1 holding a prediction",
        lambda: [
            t
            for t in stack.flower_tasks().values()
            if t.get("state") == "STARTED"
            and str(t.get("worker", "")).startswith("engine-1@")
            and time.time() - float(t.get("started") or 0) < HOLD / 2
        ],
    )
    stack.kill("engine-1")
    running = _until(
        stack,
        run_id,
        "airflow-worker-1 running a coin task",
        lambda: [
            ti
            for ti in _coin_tis(stack, day)
            if ti["state"] == "running" and ti["hostname"] == "airflow-worker-1"
        ],
    )
    stack.kill("airflow-worker-1")
    killed_at = dt.datetime.now(dt.UTC)
    killed_tis = {(ti["dag_run_id"], ti["task_id"]) for ti in running}
    killed_engine_tasks = {t["uuid"] for t in engine_busy}

    state = stack.wait_for_run("crypto_ml_master", run_id, timeout=1500)
    assert state == "success"
    coin_tis = _coin_tis(stack, day)
    assert {
        ti["dag_run_id"]
        for ti in coin_tis
        if ti["task_id"] in ("store_prediction", "issue_trade_request") and ti["state"] == "success"
    } and all(ti["state"] in ("success", "skipped") for ti in coin_tis), [
        (ti["dag_run_id"], ti["task_id"], ti["state"])
        for ti in coin_tis
        if ti["state"] not in ("success", "skipped")
    ]
    # The tasks the dead worker held were retried elsewhere and ended as they would have without
    # the kill (a transform skips a coin too young on that day).
    by_key = {(ti["dag_run_id"], ti["task_id"]): ti for ti in coin_tis}
    assert all(by_key[key]["state"] in ("success", "skipped") for key in killed_tis), [
        (key, by_key[key]["state"]) for key in killed_tis
    ]
    # Worker tasks last a second or two now (the waits run in the triggerer): only the ones that
    # had not ended when the worker was killed died with it; those must have been retried.
    cut = [
        key
        for key in killed_tis
        if dt.datetime.fromisoformat(by_key[key]["end_date"]) > killed_at
        and by_key[key]["try_number"] == 1
        and by_key[key]["hostname"] == "airflow-worker-1"
    ]
    assert not cut, f"tasks cut by the kill that were not retried: {cut}"
    retried = [by_key[key] for key in killed_tis if by_key[key]["try_number"] >= 2]
    assert {ti["hostname"] for ti in retried} <= {"airflow-worker-2"}
    # The prediction engine-1 held was redelivered to engine-2 and finished there.
    tasks = stack.flower_tasks()
    for uuid in killed_engine_tasks:
        assert tasks[uuid]["state"] == "SUCCESS" and tasks[uuid]["worker"].startswith("engine-2@"), tasks[
            uuid
        ]
    # Nothing lost, nothing twice: every coin with enough history has exactly one prediction.
    predicted_coins = {
        ti["dag_run_id"].split("__")[0]
        for ti in coin_tis
        if ti["task_id"] == "transform" and ti["state"] == "success"
    }
    rows = get_predictions(as_of=day, url=stack.crypto_db_url)
    assert (
        predicted_coins <= set(coins) and len(predicted_coins) >= 25
    )  # a coin may be too young a day earlier
    assert len(rows) == len(predicted_coins) and {r["coin"] for r in rows} == predicted_coins
