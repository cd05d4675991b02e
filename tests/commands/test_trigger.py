"""``crypto-ml trigger coin``: a hand-made coin run whose run id names the coin (the grid shows
which coin it is for), triggered through Airflow's own CLI into a real metadata DB."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml.commands.trigger import coin_trigger_command

BIN = Path(sys.executable).parent


def test_the_run_id_names_the_coin_the_day_and_what_is_not_default():
    cmd = coin_trigger_command("bitcoin", as_of="2017-06-05", model="drift", horizon=None)
    assert cmd[1:6] == ["dags", "trigger", "crypto_ml_coin", "--run-id", "bitcoin__2017-06-05__drift"]
    assert json.loads(cmd[-1]) == {"coin": "bitcoin", "model": "drift", "as_of": "2017-06-05"}
    now = dt.datetime(2026, 12, 3, 14, 5, 9, tzinfo=dt.UTC)
    cmd = coin_trigger_command("ark", as_of=None, model="naive", horizon=3, now=now)
    assert cmd[5] == "ark__manual__2026-12-03T14:05:09__h3"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    base = tmp_path_factory.mktemp("trigger")
    env = {**os.environ, "AIRFLOW_HOME": str(base / "airflow"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    subprocess.run(
        [str(BIN / "airflow"), "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300
    )
    return env


def test_a_triggered_coin_run_is_listed_under_its_coins_run_id(airflow_home):
    out = subprocess.run(
        [str(BIN / "crypto-ml"), "trigger", "coin", "bitcoin", "--as-of", "2017-06-05"],
        env=airflow_home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    runs = subprocess.run(
        [str(BIN / "airflow"), "dags", "list-runs", "crypto_ml_coin", "-o", "json"],
        env=airflow_home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    [listing] = [line for line in runs.stdout.splitlines() if line.startswith("[")]
    assert [r["run_id"] for r in json.loads(listing)] == ["bitcoin__2017-06-05"]
    again = subprocess.run(
        [str(BIN / "crypto-ml"), "trigger", "coin", "bitcoin", "--as-of", "2017-06-05"],
        env=airflow_home,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode != 0 and "already exists" in (again.stdout + again.stderr)
