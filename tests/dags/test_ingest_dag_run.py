"""Run ``crypto_ml_ingest`` for real with ``dag.test()`` in a fresh Airflow home (SQLite)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml import storage

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, sys, pendulum
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=sys.argv[1]).dags["crypto_ml_ingest"]
run = dag.test(logical_date=pendulum.parse(sys.argv[2]))
print("STATE=" + str(run.state))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(ROOT / "airflow.cfg"),
        "CRYPTO_ML_ROOT": str(ROOT),
        "CRYPTO_ML_HOME": str(home / "crypto_ml"),
        "CRYPTO_ML_DATABASE_URL": f"sqlite:///{home / 'project.db'}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def run_dag(env, logical_date):
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(ROOT / "dags"), logical_date],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert "STATE=success" in out.stdout, out.stdout[-3000:] + out.stderr[-3000:]


def test_a_run_stores_its_history_day_once(airflow_env):
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    # 2026-11-05 replays 2017-06-05 (anchor 2026-11-01 -> 2017-06-01)
    run_dag(airflow_env, "2026-11-05T00:00:00+00:00")
    ranges = storage.price_range(url=url)
    day = dt.date(2017, 6, 5)
    assert ranges["bitcoin"] == (day, day)
    assert all(first == last == day for first, last in ranges.values())
    n = storage.count_rows("prices", url=url)
    assert n == len(ranges) > 50  # one row per coin that traded that day
    # clearing and re-running the same run writes nothing twice
    run_dag(airflow_env, "2026-11-05T00:00:00+00:00")
    assert storage.count_rows("prices", url=url) == n
    storage.dispose_engine(url)
