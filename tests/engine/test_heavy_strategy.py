"""The strategy backtest on the engine (:func:`crypto_ml.engine.heavy.run_strategy_distributed`):
its forecasts one unit per coin and model, here and on real ``celery -A crypto_ml worker``
processes, give the report ``run_strategy`` gives in process."""

from __future__ import annotations

import re

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

COINS = ["bitcoin", "ethereum", "litecoin"]
MODELS = ["naive", "drift", "ar"]
SETTINGS = {"days": 40, "end": "2017-09-15", "refit_every": 10}


def assert_same_report(got, want) -> None:
    """Every frame of two strategy reports equal within float tolerance, and the same params."""
    for name in ("summary", "per_coin", "orders", "equity", "forecasts", "prices"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=1e-9, check_dtype=False)
    assert got.params == want.params
    assert set(got.timings) == set(want.timings)


@pytest.fixture(scope="module")
def in_process():
    from crypto_ml.evaluation import run_strategy

    return run_strategy(COINS, MODELS, **SETTINGS)


def test_units_run_here_give_the_in_process_report(in_process):
    from crypto_ml.engine.heavy import run_strategy_distributed

    report = run_strategy_distributed(COINS, MODELS, where="local", **SETTINGS)
    assert_same_report(report, in_process)
    assert len(in_process.orders) > 0 and len(in_process.forecasts) > 0  # the rules traded


def test_the_units_are_one_per_coin_and_model_in_the_run_order():
    from crypto_ml.engine.heavy import FORECAST_TASK, unit_task_id
    from crypto_ml.evaluation.strategy import plan_strategy
    from crypto_ml.evaluation.units import strategy_units

    plan = plan_strategy(COINS, MODELS, **SETTINGS)
    units = strategy_units(plan)
    assert [(u["model"], u["coin"]) for u in units] == [(m, c) for m in MODELS for c in COINS]
    assert all(u["dates"][-1].startswith("2017-09-15") for u in units)  # nothing after the window
    ids = {unit_task_id(FORECAST_TASK, u) for u in units}
    assert len(ids) == len(units) and ids == {unit_task_id(FORECAST_TASK, u) for u in strategy_units(plan)}


def test_bad_arguments_fail_in_the_caller():
    from crypto_ml.engine.heavy import run_strategy_distributed

    with pytest.raises(ValueError, match="where must be one of local, engine"):
        run_strategy_distributed(COINS, MODELS, where="cluster", **SETTINGS)
    with pytest.raises(ValueError, match="give days or start, not both"):  # before anything is sent
        run_strategy_distributed(COINS, MODELS, where="engine", days=30, start="2018-01-01")


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_on_engine_workers_gives_the_in_process_report(broker, start_worker, in_process):
    """Two workers on the heavy queue share the forecasting units; the report is the in-process one,
    and a second call computes nothing (every unit's answer is kept under its id)."""
    from crypto_ml.engine.heavy import run_strategy_distributed

    workers = [start_worker(broker, queues="heavy", concurrency=1) for _ in range(2)]
    report = run_strategy_distributed(
        COINS, MODELS, where="engine", app=workers[0].app, timeout=240, **SETTINGS
    )
    assert_same_report(report, in_process)
    pattern = r"forecast \d+/9 \S+ \S+: \d+ days"
    logs = [w.log() for w in workers]
    assert sum(len(re.findall(pattern, text)) for text in logs) == len(COINS) * len(MODELS)  # each once
    assert all(re.search(pattern, text) for text in logs)  # both took part
    again = run_strategy_distributed(
        COINS, MODELS, where="engine", app=workers[0].app, timeout=60, **SETTINGS
    )
    assert_same_report(again, in_process)
    assert sum(len(re.findall(pattern, w.log())) for w in workers) == len(COINS) * len(MODELS)


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_strategy_command_on_the_engine_writes_what_it_writes_in_process(
    broker, start_worker, tmp_path, monkeypatch, capsys
):
    from crypto_ml.cli import main

    worker = start_worker(broker, queues="heavy", concurrency=1)
    for name in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND", "CRYPTO_ML_ENGINE_KEY_PREFIX"):
        monkeypatch.setenv(name, worker.env[name])
    argv = [
        "backtest",
        "--strategy",
        "--coins",
        "bitcoin,ethereum",
        "--models",
        "naive,drift",
        "--period",
        "30",
        "--end",
        "2017-09-15",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(tmp_path / "here")]) == 0
    assert main([*argv, "--out", str(tmp_path / "engine"), "--on", "engine"]) == 0
    assert "--on engine" in capsys.readouterr().out
    for name in ("orders", "per_coin", "equity"):
        stem = f"strategy_30d_to_2017-09-15_10h_{name}.csv"
        engine, here = (pd.read_csv(tmp_path / where / stem) for where in ("engine", "here"))
        pd.testing.assert_frame_equal(engine, here)
    assert len(re.findall(r"forecast \d+/4 \S+ \S+: \d+ days", worker.log())) == 4


def test_the_forecast_task_is_routed_to_the_heavy_queue():
    from crypto_ml.engine.app import make_app
    from crypto_ml.engine.heavy import FORECAST_TASK
    from crypto_ml.settings.engine import HEAVY_QUEUE, EngineConfig

    app = make_app(EngineConfig(broker_url="memory://", result_backend="cache+memory://"))
    app.loader.import_default_modules()  # what a worker imports at start (the app's include)
    assert FORECAST_TASK in app.tasks
    assert app.amqp.router.route({}, FORECAST_TASK)["queue"].name == HEAVY_QUEUE
