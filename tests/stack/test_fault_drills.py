"""Fault drills on the Celery stack, each in the middle of a master run over a dozen coins, against
servers this session owns (its own redis-server and PostgreSQL cluster): restart Redis; restart
PostgreSQL; kill -9 the scheduler; kill -9 the triggerer; kill -9 the api-server.

Each time the run completes without a human (the stack's supervisor restarts what exited), every
coin's prediction is stored exactly once, no order is placed twice, and the time to recover is
printed. Runs after test_celery_stack.py and before test_faults.py (file order), on all workers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error

import pytest
from sqlalchemy import text

from crypto_ml.storage import get_engine

pytestmark = [pytest.mark.slow]

#: A dozen coins with history in June 2017; the drift model trades some of them.
COINS = [
    "ark",
    "bitcoin",
    "bitshares",
    "blackcoin",
    "bytecoin",
    "decred",
    "digibyte",
    "dogecoin",
    "e-coin",
    "emercoin",
    "ethereum",
    "factom",
]
OUTAGE = 10  # seconds a server stays down
#: The most a 10 s outage of Redis or PostgreSQL may add to the run's wall time (the issue's
#: target, met by airflow.cfg's task_queued_timeout).
MAX_EXTRA_S = 120
MODEL = "drift"  # orders are placed (naive forecasts no move)
RESULTS: list[dict] = []
BASELINE: dict = {}


def _api(stack, method, path, body=None):
    """The REST API, or None while it cannot answer (api-server down, database down)."""
    try:
        return stack.api(method, path, body)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, json.JSONDecodeError):
        return None


def _counts(stack, day: str) -> dict:
    """Predictions, trade requests and paper orders of ``day`` in the project DB (None while it is down)."""
    try:
        with get_engine(stack.crypto_db_url).connect() as conn:
            q = lambda sql: conn.execute(text(sql), {"d": day}).scalar()  # noqa: E731
            return {
                "predictions": q("SELECT count(*) FROM predictions WHERE as_of = :d"),
                "prediction_keys": q(
                    "SELECT count(DISTINCT (coin, model, horizon)) FROM predictions WHERE as_of = :d"
                ),
                "decided": q("SELECT count(*) FROM predictions WHERE as_of = :d AND decision IS NOT NULL"),
                "trade_requests": q("SELECT count(*) FROM trade_requests WHERE as_of = :d"),
                "orders": q("SELECT count(*) FROM paper_orders WHERE as_of = :d"),
                "fills": q(
                    "SELECT count(*) FROM paper_fills f JOIN paper_orders o USING (idempotency_key) "
                    "WHERE o.as_of = :d"
                ),
                "orders_without_request": q(
                    "SELECT count(*) FROM paper_orders o WHERE o.as_of = :d AND NOT EXISTS "
                    "(SELECT 1 FROM trade_requests t WHERE t.idempotency_key = o.idempotency_key)"
                ),
            }
    except Exception:  # noqa: BLE001 - the database is what the drill stopped
        return {}


def _wait_mid_run(stack, run_id: str, day: str, timeout: float = 600) -> dict:
    """Until the run is well under way (3+ coins decided) and not finished; the counts then."""
    deadline = time.monotonic() + timeout
    while True:
        counts = _counts(stack, day)
        if counts.get("decided", 0) >= 3:
            state = _api(stack, "GET", f"/api/v2/dags/crypto_ml_master/dagRuns/{run_id}")["state"]
            assert state == "running", f"the run finished ({state}) before the fault could land"
            return counts
        assert time.monotonic() < deadline, f"no coin was decided within {timeout:.0f} s: {counts}"
        time.sleep(0.5)


def _wait_run(stack, run_id: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()  # raises only when the supervisor gave up on a component
        run = _api(stack, "GET", f"/api/v2/dags/crypto_ml_master/dagRuns/{run_id}")
        if run and run["state"] in ("success", "failed"):
            return run["state"]
        assert time.monotonic() < deadline, f"master run {run_id} not finished after {timeout:.0f} s"
        time.sleep(2)


def _healthy_after(stack, component: str, since: float, timeout: float = 300) -> float:
    """Epoch time at which ``component`` reported healthy with a heartbeat after ``since``."""
    deadline = time.monotonic() + timeout
    while True:
        health = _api(stack, "GET", "/api/v2/monitor/health") or {}
        part = health.get(component) or {}
        beat = (
            part.get("latest_scheduler_heartbeat")
            or part.get("latest_triggerer_heartbeat")
            or part.get("latest_dag_processor_heartbeat")
        )
        ok = part.get("status") == "healthy"
        if ok and (
            component == "metadatabase" or (beat and dt.datetime.fromisoformat(beat).timestamp() > since)
        ):
            return time.time()
        assert time.monotonic() < deadline, f"{component} not healthy again within {timeout:.0f} s: {health}"
        time.sleep(0.5)


def _coin_tis(stack, day: str) -> list[dict]:
    """The task instances of the drill's coin runs of ``day`` (model drift: ``<coin>__<day>__drift``)."""
    from crypto_ml.pipeline.params import coin_run_id

    suffix = coin_run_id("", day, model=MODEL)
    return [ti for ti in stack.task_instances("crypto_ml_coin") if ti["dag_run_id"].endswith(suffix)]


def _first_success_after(stack, day: str, since: float) -> float | None:
    """End time of the first coin task that succeeded after ``since`` (work resumed)."""
    ends = [
        dt.datetime.fromisoformat(ti["end_date"]).timestamp()
        for ti in _coin_tis(stack, day)
        if ti["state"] == "success" and ti["end_date"]
    ]
    later = [e for e in ends if e > since]
    return min(later) if later else None


def _drill(stack, name: str, logical_date: str, fault, capsys) -> dict:
    from crypto_ml.stack.celery import day_of

    day = day_of(logical_date)
    started = time.time()
    run_id = stack.trigger_master(logical_date, {"coins": COINS, "model": MODEL})
    before = _wait_mid_run(stack, run_id, day)
    restarts_before = len(stack.restarts)
    t_fault = time.time()
    back = fault()  # epoch time the fault ended (component healthy / server back)
    state = _wait_run(stack, run_id)
    finished = time.time()
    after = _counts(stack, day)
    tis = _coin_tis(stack, day)
    resumed = _first_success_after(stack, day, back)
    figures = {
        "drill": name,
        "run_id": run_id,
        "state": state,
        "settings": os.environ.get("CRYPTO_ML_DRILL_SETTINGS", "fault"),
        "recovered_s": round(back - t_fault, 1),
        "work_resumed_s": round(resumed - t_fault, 1) if resumed else None,
        "run_s": round(finished - started, 1),
        "before": before,
        "after": after,
        "restarts": [
            {k: (round(v - t_fault, 1) if k in ("exited", "restarted") else v) for k, v in e.items()}
            for e in stack.restarts[restarts_before:]
        ],
        "retried_tasks": sum(ti["try_number"] > 1 for ti in tis),
    }
    RESULTS.append(figures)
    with capsys.disabled():
        extra = f" (+{figures['run_s'] - BASELINE['run_s']:.0f} s on the baseline)" if BASELINE else ""
        print(
            f"\n[drill] {name} [{figures['settings']} settings]{extra}: back in {figures['recovered_s']} s, "
            f"work resumed {figures['work_resumed_s']} s "
            f"after the fault; run {state} in {figures['run_s']} s; predictions {after.get('predictions')} "
            f"(before the fault {before['predictions']}), trade requests {after.get('trade_requests')}, "
            f"orders {after.get('orders')}, fills {after.get('fills')}; "
            f"{figures['retried_tasks']} task retries; "
            f"restarts {[(e['name'], e['code']) for e in figures['restarts']]}",
            flush=True,
        )

    # The run completed without a human, nothing lost and nothing twice.
    assert state == "success", json.dumps(figures, default=str)
    predicted = {
        ti["dag_run_id"].split("__")[0]
        for ti in tis
        if ti["task_id"] == "transform" and ti["state"] == "success"
    }
    assert len(predicted) >= 10
    assert after["predictions"] == after["prediction_keys"] == after["decided"] == len(predicted)
    assert after["orders"] == after["fills"] == after["trade_requests"], after  # each recorded order once
    assert after["orders_without_request"] == 0
    return figures


def test_stack_up_unpauses_the_pipeline_and_names_what_stays_paused(celery_stack):
    from crypto_ml.commands.stack import paused_report

    paused = celery_stack.unpause_pipeline()
    assert paused["crypto_ml_master"] is False and paused["crypto_ml_coin"] is False
    report = paused_report(paused)
    assert "unpaused the pipeline DAGs: crypto_ml_coin, crypto_ml_master" in report
    if paused.get("crypto_ml_train"):
        assert "PAUSED (their runs wait until unpaused): crypto_ml_train" in report
        assert "airflow dags unpause crypto_ml_train" in report


def test_drill_baseline(celery_stack, capsys):
    """The same run without a fault: what the outages' extra time is measured against."""
    BASELINE.update(
        _drill(celery_stack, "no fault (baseline)", "2026-11-09T00:00:00Z", lambda: time.time(), capsys)
    )


def _extra(figures: dict) -> float:
    if not BASELINE:
        pytest.fail("the baseline drill did not run first (run with -k 'baseline or ...')")
    return figures["run_s"] - BASELINE["run_s"]


def test_drill_restart_redis(celery_stack, owned_servers, capsys):
    redis = owned_servers["redis"]

    def fault():
        redis.stop()  # SIGKILL; the append-only file keeps what was acknowledged
        time.sleep(OUTAGE)
        redis.start()
        return time.time()

    figures = _drill(celery_stack, "restart Redis", "2026-11-10T00:00:00Z", fault, capsys)
    assert _extra(figures) <= MAX_EXTRA_S, f"a {OUTAGE} s Redis outage cost {_extra(figures):.0f} s more"


def test_drill_restart_postgres(celery_stack, owned_servers, capsys):
    pg = owned_servers["postgres"]

    def fault():
        pg.stop("fast")  # every connection of every component is cut
        time.sleep(OUTAGE)
        pg.start()
        return _healthy_after(celery_stack, "metadatabase", time.time())

    figures = _drill(celery_stack, "restart PostgreSQL", "2026-11-11T00:00:00Z", fault, capsys)
    assert _extra(figures) <= MAX_EXTRA_S, f"a {OUTAGE} s PostgreSQL outage cost {_extra(figures):.0f} s more"
    # Before this fix the stack tore itself down here (the dag-processor exited with 1); now what
    # exited was restarted and every component is running.
    assert set(celery_stack.commands()) == set(celery_stack.procs)
    assert all(p.poll() is None for p in celery_stack.procs.values())
    with capsys.disabled():
        print(
            "[drill] PostgreSQL before/after: "
            f"{json.dumps({k: figures[k] for k in ('before', 'after', 'restarts')})}"
        )


@pytest.mark.parametrize(
    ("component", "health", "logical_date"),
    [
        ("scheduler", "scheduler", "2026-11-12T00:00:00Z"),
        ("triggerer", "triggerer", "2026-11-13T00:00:00Z"),
        ("api-server", "metadatabase", "2026-11-14T00:00:00Z"),
    ],
)
def test_drill_kill_9(celery_stack, capsys, component, health, logical_date):
    def fault():
        t = time.time()
        killed = celery_stack.crash(component)
        deadline = time.monotonic() + 120
        while celery_stack.procs[component].pid == killed:  # the supervisor starts it again
            assert time.monotonic() < deadline, f"{component} was not restarted"
            time.sleep(0.2)
        return _healthy_after(celery_stack, health, t)

    figures = _drill(celery_stack, f"kill -9 {component}", logical_date, fault, capsys)
    assert [e["name"] for e in figures["restarts"]][:1] == [component]
