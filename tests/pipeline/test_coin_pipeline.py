"""``crypto_ml_coin`` run for real: transform → engine (real worker) → deferrable wait → branch."""

from __future__ import annotations

import pytest

from crypto_ml import storage

DAY = "2017-06-05"


def rows(env, table, **where):
    url = env["CRYPTO_ML_DATABASE_URL"]
    if table == "predictions":
        got = storage.get_predictions(url=url, **where)
    else:
        got = storage.get_trade_requests(url=url, **where)
    storage.dispose_engine(url)
    return got


def test_store_branch(run_dag, airflow_env, engine_worker):
    result = run_dag(airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": DAY, "model": "naive"})
    assert result["state"] == "success", result["log"][-5000:]
    tasks = result["tasks"]
    assert tasks["store_prediction"] == "success"
    assert tasks["issue_trade_request"] == "skipped"
    assert "report" not in tasks  # the branch that ran returns the run's report
    assert tasks["wait_for_prediction"] == "success"
    [pred] = rows(airflow_env, "predictions", coin="bitcoin", as_of=DAY)
    assert pred["model"] == "naive" and len(pred["values"]) == 10
    assert pred["last_close"] == 2686.81  # bitcoin's close on 2017-06-05: no later data seen
    assert pred["decision"] == "store" and "within" in pred["decision_reason"]  # recorded by decide
    report = result["reports"]["decide"]  # the run's report: decide's XCom (the store branch is empty)
    assert report["coin"] == "bitcoin" and report["outcome"]["decision"] == "store"
    assert report["forecast"] == [round(v, 6) for v in pred["values"]]
    # One XCom of ours per step: the decision travels inside the report (each XCom is a write to
    # the metadata DB), next to the branch's own key.
    assert result["xcom_keys"]["decide"] == ["report", "skipmixin_key"]
    # The transform's XCom is its summary: the closes stay in the project database, where the engine
    # read them (the forecast's last close above is the stored close of as_of).
    summary = result["returns"]["transform"]
    assert summary["coin"] == "bitcoin" and summary["last_close"] == 2686.81 and "closes" not in summary


def test_trade_branch_and_rerun_writes_nothing_twice(run_dag, airflow_env, engine_worker):
    conf = {"coin": "ark", "as_of": DAY, "model": "drift"}  # drift: +12.7 % over 10 days -> buy
    first = run_dag(airflow_env, "crypto_ml_coin", conf)
    assert first["state"] == "success", first["log"][-5000:]
    assert first["tasks"]["issue_trade_request"] == "success"
    assert first["tasks"]["store_prediction"] == "skipped"
    assert len(first["tasks"]) == 6  # transform, submit, wait, decide, store | trade
    [trade] = rows(airflow_env, "trades", coin="ark", as_of=DAY)
    assert trade["side"] == "buy" and trade["status"] == "filled"
    [pred] = rows(airflow_env, "predictions", coin="ark", as_of=DAY)
    assert pred["decision"] == "trade"  # recorded by decide, with the write-ahead trade request
    # A second run of the same coin and day (a re-run) stores and orders nothing new.
    second = run_dag(airflow_env, "crypto_ml_coin", conf)
    assert second["state"] == "success", second["log"][-5000:]
    [again] = rows(airflow_env, "predictions", coin="ark", as_of=DAY)
    assert (again["run_id"], again["created_at"]) == (pred["run_id"], pred["created_at"])  # never rewritten
    assert len(rows(airflow_env, "trades", coin="ark", as_of=DAY)) == 1
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    assert storage.count_rows("paper_fills", url=url) == 1
    storage.dispose_engine(url)


def test_kill_switch_routes_to_store_only(run_dag, airflow_env, engine_worker):
    conf = {"coin": "e-coin", "as_of": DAY, "model": "drift"}  # would buy
    result = run_dag(
        airflow_env, "crypto_ml_coin", conf, extra_env={"AIRFLOW_VAR_CRYPTO_ML_KILL_SWITCH": "true"}
    )
    assert result["state"] == "success", result["log"][-5000:]
    assert result["tasks"]["store_prediction"] == "success"
    assert result["tasks"]["issue_trade_request"] == "skipped"
    assert "kill switch" in result["log"]
    assert rows(airflow_env, "trades", coin="e-coin") == []
    assert len(rows(airflow_env, "predictions", coin="e-coin", as_of=DAY)) == 1


@pytest.mark.parametrize(
    ("conf", "words"),
    [
        ({"coin": "bitcon"}, "'bitcon' is not one of ['aidos-kuneen'"),
        ({"coin": "bitcoin", "horizon": 0}, "0 is less than the minimum of 1"),
        ({"coin": "bitcoin", "model": "prophet"}, "'prophet' is not one of ['naive'"),
    ],
)
def test_bad_params_are_refused_when_the_run_is_created(run_dag, airflow_env, conf, words):
    result = run_dag(airflow_env, "crypto_ml_coin", conf)
    assert "error" in result and "ParamValidationError" in result["error"], result.get("tasks")
    assert words in result["error"]


def test_a_coin_without_history_yet_is_skipped_with_the_reason(run_dag, airflow_env, engine_worker):
    # neblio's first day is 2017-09-12: nothing to predict from on 2017-06-05.
    result = run_dag(airflow_env, "crypto_ml_coin", {"coin": "neblio", "as_of": DAY})
    assert result["state"] == "success"
    assert set(result["tasks"].values()) == {"skipped"}
    assert "not enough history, skipped: neblio: no prices on or before 2017-06-05" in result["log"]


def test_bad_stored_data_fails_clearly_and_alone(run_dag, airflow_env, engine_worker):
    """A corrupt price row in the project DB: the coin's run fails naming the row; nothing stored."""
    import pandas as pd

    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    bad = pd.DataFrame(
        {
            "coin": ["ubiq"],
            "name": ["Ubiq"],
            "date": [pd.Timestamp(DAY)],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [-3.0],
            "volume": [None],
            "market_cap": [None],
            "synthetic": [False],
        }
    )
    run_dag(airflow_env, "crypto_ml_coin", {"coin": "ubiq", "as_of": "2017-06-04"})  # history stored
    storage.store_prices(bad, source="corrupted by the test", url=url)
    result = run_dag(airflow_env, "crypto_ml_coin", {"coin": "ubiq", "as_of": DAY})
    assert result["state"] == "failed" and result["tasks"]["transform"] == "failed"
    assert "ubiq: row" in result["log"] and "(2017-06-05) has close -3.0" in result["log"]
    assert rows(airflow_env, "predictions", coin="ubiq", as_of=DAY) == []
    storage.dispose_engine(url)


def test_training_publishes_a_version_the_daily_run_then_uses(run_dag, airflow_env, engine_worker):
    """crypto_ml_train publishes a model version trained up to its day; crypto_ml_coin uses it."""
    env = {**airflow_env}
    trained = run_dag(
        env,
        "crypto_ml_train",
        {"model": "linear", "coins": ["bitcoin", "litecoin"]},
        extra_env={
            "CRYPTO_ML_REPLAY_ANCHOR_REAL": "2026-11-01",
            "CRYPTO_ML_REPLAY_ANCHOR_HISTORY": "2017-06-01",
        },
    )
    assert trained["state"] == "success", trained["log"][-5000:]
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    version = storage.latest_model_version("bitcoin", "linear", as_of="2017-07-31", url=url)
    assert version is not None and version["version"] >= 1
    train_end = version["train_end"].isoformat()
    # A run on the training day predicts with that version and says so in its report.
    result = run_dag(
        airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": train_end, "model": "linear"}
    )
    assert result["state"] == "success", result["log"][-5000:]
    [pred] = rows(airflow_env, "predictions", coin="bitcoin", as_of=train_end)
    assert pred["model"] == "linear" and pred["version"] == version["version"]
    assert result["reports"]["decide"]["version"] == version["version"]  # and the run's report says so
    # A run a few days later predicts with the same version, moved to the newer closes.
    import datetime as dt

    later_day = (version["train_end"] + dt.timedelta(days=3)).isoformat()
    later = run_dag(airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": later_day, "model": "linear"})
    assert later["state"] == "success", later["log"][-5000:]
    [newer] = rows(airflow_env, "predictions", coin="bitcoin", as_of=later_day)
    assert newer["version"] == version["version"]
    # A run for a day BEFORE the training day cannot use it (point in time): trained on the fly.
    early = run_dag(
        airflow_env, "crypto_ml_coin", {"coin": "bitcoin", "as_of": "2017-05-01", "model": "linear"}
    )
    assert early["state"] == "success"
    [old] = rows(airflow_env, "predictions", coin="bitcoin", as_of="2017-05-01")
    assert old["version"] == 0
    storage.dispose_engine(url)


def test_airflow_dags_trigger_refuses_bad_params(airflow_env):
    """The operator's command: `airflow dags trigger` itself refuses an unknown coin."""
    import subprocess
    import sys
    from pathlib import Path

    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "dags", "reserialize"], env=airflow_env, capture_output=True, check=True)
    out = subprocess.run(
        [airflow, "dags", "trigger", "crypto_ml_coin", "--conf", '{"coin": "bitcon"}'],
        env=airflow_env,
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert "Invalid input for param coin: 'bitcon' is not one of" in out.stdout + out.stderr


def test_backfill_days_replay_their_own_history(airflow_env):
    """poll() for past logical dates (a backfill) stores and lists exactly those history days."""
    from crypto_ml.pipeline.steps import poll

    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    later = poll("2026-11-20", url=url)
    earlier = poll("2026-11-10", url=url)  # backfilled after a later day: still its own day
    assert (later["history_day"], earlier["history_day"]) == ("2017-06-20", "2017-06-10")
    assert earlier["inserted"] == 0 and poll("2026-11-20", url=url)["inserted"] == 0
    bitcoin = storage.load_prices("bitcoin", as_of="2017-06-10", url=url)
    assert bitcoin["Date"].iat[-1].date().isoformat() == "2017-06-10"
    storage.dispose_engine(url)


def test_a_coin_run_without_as_of_predicts_as_of_its_logical_date(airflow_env, engine_worker):
    """The user's command: `airflow dags test crypto_ml_coin 2026-11-16 -c '{"coin": "bitcoin"}'`
    predicts as of the replayed day of 2026-11-16 (2017-06-16), whatever the wall clock says."""
    import subprocess
    import sys
    from pathlib import Path

    airflow = str(Path(sys.executable).parent / "airflow")
    out = subprocess.run(
        [airflow, "dags", "test", "crypto_ml_coin", "2026-11-16", "-c", '{"coin": "bitcoin"}'],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [pred] = rows(airflow_env, "predictions", coin="bitcoin", as_of="2017-06-16")
    assert pred["last_close"] == 2518.56  # bitcoin's close on 2017-06-16


def test_clearing_decide_or_the_order_task_writes_nothing_twice(run_dag, airflow_env, engine_worker):
    """Each task of a finished trade run executed again on its own (``airflow tasks test``, as a
    cleared task would run): one prediction, one recorded decision, one order, one fill."""
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    day = "2017-06-06"
    conf = {"coin": "ark", "as_of": day, "model": "drift"}  # drift: a buy
    first = run_dag(airflow_env, "crypto_ml_coin", conf)
    assert first["tasks"]["issue_trade_request"] == "success", first["log"][-5000:]
    db = Path(airflow_env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        [(run_id,)] = conn.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = 'crypto_ml_coin' AND conf LIKE ? "
            "ORDER BY id DESC LIMIT 1",
            (f"%{day}%",),
        ).fetchall() or [(None,)]
    assert run_id, "the coin run is not in the metadata DB"
    url = airflow_env["CRYPTO_ML_DATABASE_URL"]
    fills = storage.count_rows("paper_fills", url=url)
    airflow = str(Path(sys.executable).parent / "airflow")
    for task_id in ("decide", "issue_trade_request", "decide", "issue_trade_request"):
        out = subprocess.run(
            [airflow, "tasks", "test", "crypto_ml_coin", task_id, run_id],
            env=airflow_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len(rows(airflow_env, "predictions", coin="ark", as_of=day)) == 1
    [trade] = rows(airflow_env, "trades", coin="ark", as_of=day)
    assert trade["side"] == "buy" and trade["status"] == "filled"
    assert storage.count_rows("paper_fills", url=url) == fills
    storage.dispose_engine(url)
