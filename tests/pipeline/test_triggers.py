"""Triggers refuse what they cannot do, in one line: at trigger time where Airflow checks params
(their schema), otherwise in the run's first task; and a re-trigger of a day does what it asks.

Real Airflow: runs through ``dag.test()`` in a subprocess (see conftest), ``airflow dags trigger``,
and the fan-out's real ``TriggerDagRun``/``GetDagRun`` requests against the metadata DB.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml import storage

AIRFLOW = str(Path(sys.executable).parent / "airflow")
MODELS = "['naive', 'drift', 'linear', 'ar', 'lstm']"


#: The master's tasks that run whatever happened upstream (trigger rules all_done / one_failed).
WATCHERS = {"wait_for_coin_runs", "summarize", "check_all_coins"}


def _failed_first_task(result: dict, task_id: str) -> None:
    """The run is red, its first task failed and nothing after it ran (but the master's watchers)."""
    assert result.get("state") == "failed", result.get("error") or result["log"][-4000:]
    assert result["tasks"][task_id] == "failed"
    others = {t: s for t, s in result["tasks"].items() if t != task_id and t not in WATCHERS}
    assert set(others.values()) <= {"upstream_failed", "skipped"}, others
    if "check_all_coins" in result["tasks"]:
        assert result["tasks"]["check_all_coins"] == "failed"  # the master's red run


# -- refused in the first task: what Airflow's params cannot check -----------------------------------
def test_an_as_of_after_the_replays_last_day_fails_the_transform_naming_it(run_dag, airflow_env):
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    storage.migrate(url)
    stored = storage.count_rows("prices", url=url)
    result = run_dag(airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": "2030-01-01"})
    _failed_first_task(result, "transform")
    assert (
        "bitcoin: as_of 2030-01-01 is after the last closed day of the market (replay of the bundled "
        "2013-2017 history): 2017-09-23; give an as_of on or before 2017-09-23, or none (the run's "
        "market day)"
    ) in result["log"]
    assert storage.get_predictions(coin="bitcoin", as_of="2030-01-01", url=url) == []  # no 2030 forecast
    assert storage.count_rows("prices", url=url) == stored  # refused before anything was stored
    storage.dispose_engine(url)
    # (its newest row: 7 of the 97 bundled coins have 2017-09-23, bitcoin's last day is 2017-09-22)


@pytest.mark.parametrize(
    ("dag_id", "conf", "task_id", "line"),
    [
        (
            "crypto_ml_coin",
            {"coins": ["bitcoin"]},
            "transform",
            "crypto_ml_coin does not take conf key 'coins' (did you mean 'coin'?); its keys are: "
            "as_of, coin, horizon, model",
        ),
        (
            "crypto_ml_master",
            {"coin": "bitcoin", "modle": "drift"},
            "poll_new_data",
            "crypto_ml_master does not take conf keys 'coin' (did you mean 'coins'?), 'modle' (did you mean "
            "'model'?); its keys are: coins, horizon, model",
        ),
        (
            "crypto_ml_train",
            {"coin": "bitcoin", "days": 3},
            "coins_to_train",
            "crypto_ml_train does not take conf keys 'coin' (did you mean 'coins'?), 'days'; its keys are: "
            "coins, min_rows, model",
        ),
    ],
)
def test_unknown_conf_keys_fail_the_first_task_naming_the_valid_keys(
    run_dag, airflow_env, dag_id, conf, task_id, line
):
    result = run_dag(airflow_env, dag_id, conf)
    _failed_first_task(result, task_id)
    assert line in result["log"]


def test_a_model_served_only_trained_fails_the_transform_with_the_command_that_trains_it(
    run_dag, airflow_env
):
    result = run_dag(
        airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": "2017-06-05", "model": "lstm"}
    )
    _failed_first_task(result, "transform")
    assert (
        "model 'lstm' is not trained for bitcoin on data up to 2017-06-05, and a pipeline run does not "
        "fit it on the fly; train it first: airflow dags trigger crypto_ml_train --conf "
        '\'{"model": "lstm", "coins": ["bitcoin"]}\' (a training run serves its market day and '
        "the days after)"
    ) in result["log"]


def test_the_master_refuses_an_untrained_model_before_any_coin_run_exists(run_dag, airflow_env):
    result = run_dag(airflow_env, "crypto_ml_master", {"model": "lstm", "coins": ["bitcoin", "ark"]})
    assert result.get("state") == "failed", result.get("error") or result["log"][-4000:]
    assert result["tasks"]["poll_new_data"] == "success" and result["tasks"]["coin_runs"] == "failed"
    assert result["tasks"]["run_coin_pipelines"] == "upstream_failed"
    assert ("model 'lstm' is not trained for ark, bitcoin on data up to ") in result["log"]
    assert (
        'train it first: airflow dags trigger crypto_ml_train --conf \'{"model": "lstm", "coins": '
        '["ark", "bitcoin"]}\''
    ) in result["log"]


@pytest.mark.parametrize(
    ("conf", "line"),
    [
        (
            {"coins": ["bitcoin", "bitcon"]},
            "coins without data for {day}: ['bitcon']; {coins} coins have data that day",
        ),
        (
            {"coins": ["bitcoin"], "min_rows": 100000},
            "fewer than min_rows=100000 days up to {day} for bitcoin ({rows}): not trainable; "
            "lower min_rows or train a later day",
        ),
    ],
)
def test_the_training_refuses_coins_it_cannot_train_instead_of_dropping_them(
    run_dag, airflow_env, conf, line
):
    from crypto_ml.pipeline.catalog import replay_day

    day = replay_day(dt.datetime.now(dt.UTC).date())  # dag.test's logical date: now
    rows = (day - dt.date(2013, 4, 28)).days + 1  # bitcoin's days, from the bundled history's first
    result = run_dag(airflow_env, "crypto_ml_train", conf)
    _failed_first_task(result, "coins_to_train")
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    coins = len(storage.coins_on(day, url=url))  # what the poll stored for the day
    storage.dispose_engine(url)
    assert coins > 80
    assert line.format(day=day, rows=rows, coins=coins) in result["log"]


# -- refused when the run is created: the params' schema -----------------------------------------
@pytest.mark.parametrize("dag_id", ["crypto_ml_coin", "crypto_ml_master", "crypto_ml_train"])
def test_an_unknown_model_is_refused_when_the_run_is_created(run_dag, airflow_env, dag_id):
    conf = {"model": "prophet", **({"coin": "bitcoin"} if dag_id == "crypto_ml_coin" else {})}
    result = run_dag(airflow_env, dag_id, conf)
    assert "ParamValidationError" in result.get("error", ""), result.get("tasks")
    assert f"Invalid input for param model: 'prophet' is not one of {MODELS}" in result["error"]


def _master_runs(env) -> int:
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        return conn.execute("SELECT count(*) FROM dag_run WHERE dag_id = 'crypto_ml_master'").fetchone()[0]


def test_airflow_dags_trigger_refuses_an_unknown_model_for_the_master(airflow_env):
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=airflow_env, capture_output=True, check=True)
    before = _master_runs(airflow_env)
    out = subprocess.run(
        [AIRFLOW, "dags", "trigger", "crypto_ml_master", "--conf", '{"model": "prophet"}'],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode != 0
    assert f"Invalid input for param model: 'prophet' is not one of {MODELS}" in out.stdout + out.stderr
    assert _master_runs(airflow_env) == before  # no run was created


# -- the market's last closed day, for each market kind -------------------------------------------
def test_an_as_of_after_an_exchanges_last_closed_candle_is_refused_before_any_request(tmp_path):
    """The run's clock decides which candles have closed; nothing is asked of the exchange
    (its api_url is a closed port: a request would fail with another message)."""
    from crypto_ml.markets import MarketConfig
    from crypto_ml.pipeline.steps import AsOfAfterMarket, transform

    market = MarketConfig.from_env_value(
        "crypto-ml-market://binance?symbols=BTC/USDT&api_url=http%3A%2F%2F127.0.0.1%3A9"
    )
    url = f"sqlite:///{tmp_path / 'project.db'}"
    run_after = dt.datetime(2026, 12, 3, 8, 30, tzinfo=dt.UTC)
    with pytest.raises(AsOfAfterMarket) as refused:
        transform("btc-usdt", "2026-12-03", url=url, market=market, now=run_after)
    assert str(refused.value) == (
        "btc-usdt: as_of 2026-12-03 is after the last closed day of the market (exchange binance (BTC/USDT) "
        "via ccxt, candles closed by 2026-12-03 08:30 UTC): 2026-12-02; give an as_of on or before "
        "2026-12-02, or none (the run's market day)"
    )
    storage.dispose_engine(url)


def test_an_as_of_after_a_csv_folders_last_day_is_refused(tmp_path):
    from crypto_ml.markets import MarketConfig
    from crypto_ml.pipeline.steps import AsOfAfterMarket, transform

    folder = tmp_path / "prices"
    folder.mkdir()
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=k) for k in range(30)]
    (folder / "prices.csv").write_text(
        "coin,name,date,open,high,low,close\n"
        + "".join(f"acme,Acme,{d},{10 + k},{11 + k},{9 + k},{10 + k}\n" for k, d in enumerate(days))
    )
    market = MarketConfig.from_env_value(f"crypto-ml-market://csv?path={folder}")
    url = f"sqlite:///{tmp_path / 'project.db'}"
    with pytest.raises(AsOfAfterMarket) as refused:
        transform("acme", "2024-02-05", url=url, market=market)
    assert str(refused.value) == (
        f"acme: as_of 2024-02-05 is after the last closed day of the market (CSV files in {folder}): "
        "2024-01-30; give an as_of on or before 2024-01-30, or none (the run's market day)"
    )
    out = transform("acme", "2024-01-30", url=url, market=market)  # its last day is fine
    assert (out["rows"], out["last_date"], out["warnings"]) == (30, "2024-01-30", [])
    storage.dispose_engine(url)


# -- a re-trigger of a day: never a reset that keeps the old conf or kills running tasks ----------
def test_a_coin_runs_id_names_its_model_and_horizon_when_not_the_defaults():
    from crypto_ml.pipeline.params import coin_run_id, coin_runs

    assert coin_run_id("bitcoin", "2017-06-29", model="naive", horizon=10) == "bitcoin__2017-06-29"
    assert coin_run_id("bitcoin", "2017-06-29", model="drift", horizon=10) == "bitcoin__2017-06-29__drift"
    assert (
        coin_run_id("btc-usdt", "2026-12-02", model="linear", horizon=5) == "btc-usdt__2026-12-02__linear__h5"
    )
    assert coin_run_id("bitcoin", "2017-06-29", model="naive", horizon=30) == "bitcoin__2017-06-29__h30"
    [run] = coin_runs(["ark"], "2017-06-29", model="drift", horizon=10)
    assert run == {
        "trigger_run_id": "ark__2017-06-29__drift",
        "conf": {"coin": "ark", "as_of": "2017-06-29", "horizon": 10, "model": "drift"},
    }


FANOUT_DAGS = """
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

from crypto_ml.operators.fanout import TriggerDagRunsOperator

START = pendulum.datetime(2026, 11, 1, tz="UTC")

with DAG("retrigger_target", schedule=None, start_date=START):
    EmptyOperator(task_id="noop")

with DAG("retrigger", schedule=None, start_date=START, params={"model": Param("naive", type="string")}):
    TriggerDagRunsOperator(
        task_id="trigger_all", trigger_dag_id="retrigger_target",
        runs=[{"trigger_run_id": "bitcoin__2017-06-25",
               "conf": {"coin": "bitcoin", "model": "{{ params.model }}"}}],
    )
"""

SET_SUCCESS = r"""
import sys
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
with create_session() as session:
    run = session.query(DagRun).filter_by(dag_id=sys.argv[1], run_id=sys.argv[2]).one()
    run.set_state(DagRunState.SUCCESS)
"""


def _target_run(env) -> tuple[str, int, dict]:
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        [(state, clears, conf)] = conn.execute(
            "SELECT state, clear_number, conf FROM dag_run WHERE dag_id = 'retrigger_target'"
        ).fetchall()
    return state, clears, json.loads(conf) if isinstance(conf, str) else conf


def test_the_fan_out_leaves_a_running_run_running_re_runs_a_finished_one_and_refuses_another_conf(
    run_dag, airflow_env, tmp_path
):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "retrigger.py").write_text(FANOUT_DAGS)
    env = {**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    subprocess.run([AIRFLOW, "dags", "reserialize"], env=env, check=True, capture_output=True)
    run_id = "bitcoin__2017-06-25"

    first = run_dag(env, "retrigger", {}, dags=dags)
    assert first["state"] == "success", first["log"][-4000:]
    assert f"triggered retrigger_target run {run_id}" in first["log"]
    assert _target_run(env) == ("queued", 0, {"coin": "bitcoin", "model": "naive"})

    # Not finished (no scheduler here: it stays queued): left running, never reset under its tasks.
    again = run_dag(env, "retrigger", {}, dags=dags)
    assert again["state"] == "success", again["log"][-4000:]
    assert (
        f"retrigger_target run {run_id} is still queued with this conf: not reset (its tasks go on), "
        "waited for"
    ) in again["log"]
    assert again["returns"]["trigger_all"] == [run_id]
    assert _target_run(env) == ("queued", 0, {"coin": "bitcoin", "model": "naive"})

    # Finished: re-run (reset), same conf.
    subprocess.run(
        [sys.executable, "-c", SET_SUCCESS, "retrigger_target", run_id],
        env=env,
        check=True,
        capture_output=True,
    )
    rerun = run_dag(env, "retrigger", {}, dags=dags)
    assert rerun["state"] == "success", rerun["log"][-4000:]
    assert f"re-ran retrigger_target run {run_id} (it had finished: success)" in rerun["log"]
    assert _target_run(env) == ("queued", 1, {"coin": "bitcoin", "model": "naive"})

    # Another conf under the same run id: refused, the run left as it is (a reset would keep its conf).
    other = run_dag(env, "retrigger", {"model": "drift"}, dags=dags)
    assert other["state"] == "failed" and other["tasks"]["trigger_all"] == "failed"
    assert (
        f"1 retrigger_target run(s) not triggered, the others were: {run_id} exists (queued) with conf "
        '{"coin": "bitcoin", "model": "naive"}, not {"coin": "bitcoin", "model": "drift"}; a reset would '
        "keep its conf, so it was left as it is (trigger retrigger_target under another run id, or delete "
        "that run first)"
    ) in other["log"]
    assert _target_run(env) == ("queued", 1, {"coin": "bitcoin", "model": "naive"})


# -- end to end on the embedded default: the README's re-trigger ---------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_re_triggering_a_day_with_another_model_runs_that_model_next_to_the_first(tmp_path, monkeypatch):
    """`airflow dags trigger crypto_ml_master --conf '{"model": "drift"}'` on a day that already ran
    (the README's suggestion) on the local stack (scheduler, dag-processor, triggerer, api-server,
    engine worker; replay, SQLite): drift's coin runs are new runs with drift's conf and drift
    predictions; the default's runs are left as they were. The same trigger again re-runs drift's
    finished runs (reset, nothing stored twice)."""
    from crypto_ml.stack.local import LocalStack

    url = f"sqlite:///{tmp_path / 'project.db'}"
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRYPTO_ML_DATABASE_URL", url)
    monkeypatch.setenv("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False")  # only our runs
    for name in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND", "AIRFLOW_CONN_CRYPTO_ML_MARKET"):
        monkeypatch.delenv(name, raising=False)
    coins = ["ark", "bitcoin"]
    airflow_db = tmp_path / "airflow" / "airflow.db"

    def coin_runs() -> dict[str, tuple[str, int, dict]]:
        with sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True, timeout=30) as conn:
            rows = conn.execute(
                "SELECT run_id, state, clear_number, conf FROM dag_run WHERE dag_id = 'crypto_ml_coin'"
            ).fetchall()
        return {r: (s, n, json.loads(c) if isinstance(c, str) else c) for r, s, n, c in rows}

    with LocalStack(port=_free_port()) as stack:
        stack.unpause_pipeline()
        from crypto_ml.stack.follow import ApiError

        with pytest.raises(ApiError) as refused:  # the REST API's trigger checks the params' schema too
            stack.client.trigger("crypto_ml_master", None, {"model": "prophet", "coins": coins})
        assert refused.value.code == 400
        assert f"Invalid input for param model: 'prophet' is not one of {MODELS}" in str(refused.value)
        assert stack.client.dag_runs("crypto_ml_master") == []  # no run was created
        first = stack.client.trigger("crypto_ml_master", None, {"coins": coins})
        assert stack.wait_for_run("crypto_ml_master", first, timeout=900) == "success"
        day = stack.client.xcom("crypto_ml_master", first, "poll_new_data")["history_day"]
        drift = stack.client.trigger("crypto_ml_master", None, {"model": "drift", "coins": coins})
        assert stack.wait_for_run("crypto_ml_master", drift, timeout=900) == "success"
        after_drift = coin_runs()
        again = stack.client.trigger("crypto_ml_master", None, {"model": "drift", "coins": coins})
        assert stack.wait_for_run("crypto_ml_master", again, timeout=900) == "success"
        after_again = coin_runs()
        assert stack.client.xcom("crypto_ml_master", again, "run_coin_pipelines") == [
            f"{c}__{day}__drift" for c in coins
        ]

    def conf(coin, model):
        return {"coin": coin, "as_of": day, "horizon": 10, "model": model}

    assert after_drift == {
        **{f"{c}__{day}": ("success", 0, conf(c, "naive")) for c in coins},
        **{f"{c}__{day}__drift": ("success", 0, conf(c, "drift")) for c in coins},
    }
    assert after_again == {  # drift's finished runs re-run once; the default's untouched
        **{f"{c}__{day}": ("success", 0, conf(c, "naive")) for c in coins},
        **{f"{c}__{day}__drift": ("success", 1, conf(c, "drift")) for c in coins},
    }
    for coin in coins:
        preds = storage.get_predictions(coin=coin, as_of=day, url=url)
        assert sorted(p["model"] for p in preds) == ["drift", "naive"], f"{coin}: {preds}"
        assert {p["model"]: p["run_id"] for p in preds} == {
            "naive": f"{coin}__{day}",
            "drift": f"{coin}__{day}__drift",
        }
    storage.dispose_engine(url)
