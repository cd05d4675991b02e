"""A real Airflow home (SQLite metadata DB) and a real engine worker on the embedded broker.

DAG runs go through ``dag.test()`` in a subprocess (Airflow's own in-process runner: real task
instances, XComs, deferral through the real trigger, branching), talking to a real
``celery -A crypto_ml worker`` process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

RUN_DAG = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags[sys.argv[2]]
conf = json.loads(sys.argv[3])
try:
    run = dag.test(run_conf=conf)
except Exception as exc:
    print("RESULT=" + json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, key="report").all()
    reports = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    keys, returns = {}, {}
    for row in session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id).all():
        keys.setdefault(row.task_id, []).append(row.key)
        if row.key == "return_value":
            returns[row.task_id] = XComModel.deserialize_value(row)
print("RESULT=" + json.dumps({"state": str(run.state), "tasks": states, "reports": reports,
                              "xcom_keys": {t: sorted(k) for t, k in keys.items()}, "returns": returns},
                             default=str))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(base / "airflow"),
        "CRYPTO_ML_HOME": str(base / "home"),
        "CRYPTO_ML_DATABASE_URL": f"sqlite:///{base / 'project.db'}",
        "CRYPTO_ML_BROKER_URL": f"sqla+sqlite:///{base / 'broker.db'}",
        "CRYPTO_ML_RESULT_BACKEND": f"db+sqlite:///{base / 'results.db'}",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    return env


@pytest.fixture(scope="module")
def engine_worker(airflow_env):
    """One real engine worker process (own process group, killed with its children)."""
    log = Path(airflow_env["CRYPTO_ML_HOME"]).parent / "worker.log"
    proc = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "crypto_ml",
            "worker",
            "-Q",
            "predict,train",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
            "-n",
            f"pipeline-{os.getpid()}@%h",
        ],
        env=airflow_env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"engine worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def run_dag():
    """The :func:`_run_dag` helper, as a fixture."""
    return _run_dag


def _run_dag(
    env, dag_id: str, conf: dict, *, extra_env: dict | None = None, dags: Path = ROOT / "dags"
) -> dict:
    """``dag.test(run_conf=conf)`` in a subprocess; returns {"state", "tasks"} or {"error"}."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(dags), dag_id, json.dumps(conf)],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT=")]
    assert lines, f"no result from dag.test:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    result = json.loads(lines[-1][len("RESULT=") :])
    result["log"] = out.stdout + out.stderr
    return result
