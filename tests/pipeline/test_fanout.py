"""The batched fan-out: one task creates every run, as TriggerDagRunOperator would (its request),
each with its conf; triggering again while they are still queued leaves them alone (never reset
under their tasks, said in the log) instead of failing "already exists"."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

DAGS = Path(__file__).parent / "dags"


def _runs(env) -> dict[str, dict]:
    out = subprocess.run(
        ["airflow", "dags", "list-runs", "fanout_target", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    [listing] = [line for line in out.stdout.splitlines() if line.startswith("[{")]  # not the log lines
    return {r["run_id"]: r for r in json.loads(listing)}


def test_one_task_triggers_every_run_and_a_rerun_leaves_queued_runs_alone(run_dag, airflow_env):
    env = {**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS)}
    subprocess.run(["airflow", "dags", "reserialize"], env=env, check=True, capture_output=True)
    first = run_dag(env, "fanout", {}, dags=DAGS)
    assert first["state"] == "success", first["log"][-4000:]
    runs = _runs(env)
    assert set(runs) == {"bitcoin__2017-06-25", "ark__2017-06-25"}
    assert {r["state"] for r in runs.values()} == {"queued"}  # created; the scheduler runs them
    assert "triggered fanout_target run bitcoin__2017-06-25" in first["log"]
    again = run_dag(env, "fanout", {}, dags=DAGS)  # the day re-run: not "already exists", no reset
    assert again["state"] == "success", again["log"][-4000:]
    assert set(_runs(env)) == set(runs)
    assert "run bitcoin__2017-06-25 is still queued with this conf: not reset" in again["log"]
