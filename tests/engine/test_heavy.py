"""The heavy work (:mod:`crypto_ml.engine.heavy`): the backtest split per coin and model gives the
in-process result, here and on real ``celery -A crypto_ml worker`` processes, and a run interrupted
by a killed worker finishes computing only what is missing."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

COINS = ["bitcoin", "ethereum", "litecoin", "aidos-kuneen"]  # the last is too short for the period
MODELS = ["naive", "drift", "ar"]
SETTINGS = {"period": 60, "folds": 3, "horizon": 5}


def _spec():
    from crypto_ml.evaluation.units import BacktestSpec

    return BacktestSpec(COINS, MODELS, **SETTINGS)


SPEC = _spec()


def _assert_same(got, want) -> None:
    for name in ("folds", "skipped", "forecasts"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=1e-9)
    assert got.params == want.params
    pd.testing.assert_frame_equal(got.coverage(), want.coverage(), rtol=1e-9)


@pytest.fixture(scope="module")
def in_process():
    from crypto_ml.evaluation import run_backtest

    return run_backtest(**SPEC.arguments())


def test_units_run_here_give_the_in_process_result(in_process):
    from crypto_ml.engine.heavy import run_backtest_distributed
    from crypto_ml.evaluation.units import BacktestSpec

    _assert_same(run_backtest_distributed(BacktestSpec(COINS, MODELS, **SETTINGS), where="local"), in_process)
    assert len(in_process.folds) > 0 and len(in_process.skipped) > 0


def test_a_window_with_too_few_closes_is_skipped_as_in_process():
    from crypto_ml.engine.heavy import run_backtest_distributed
    from crypto_ml.evaluation import run_backtest
    from crypto_ml.evaluation.units import BacktestSpec

    window = {"start": "2017-09-01", "end": "2017-09-20", "folds": 30}
    _assert_same(
        run_backtest_distributed(BacktestSpec(["bitcoin"], ["naive"], **window), where="local"),
        run_backtest(["bitcoin"], ["naive"], **window),
    )


def test_unit_task_ids_are_deterministic_and_name_the_data():
    from crypto_ml.engine.heavy import BACKTEST_TASK, unit_task_id
    from crypto_ml.evaluation.units import backtest_units

    first, again = (backtest_units(["bitcoin"], ["naive", "ar"], **SETTINGS) for _ in range(2))
    ids = [unit_task_id(BACKTEST_TASK, u) for u in first]
    assert ids == [unit_task_id(BACKTEST_TASK, u) for u in again] and len(set(ids)) == 2
    other = dict(first[0], closes=[*first[0]["closes"][:-1], first[0]["closes"][-1] * 1.01])
    assert unit_task_id(BACKTEST_TASK, other) != ids[0]


def test_bad_arguments_fail_in_the_caller():
    from crypto_ml.engine.heavy import run_backtest_distributed
    from crypto_ml.evaluation.units import BacktestSpec

    with pytest.raises(ValueError, match="where must be one of local, engine"):
        run_backtest_distributed(BacktestSpec(["bitcoin"], ["naive"]), where="cluster")
    with pytest.raises(ValueError, match="horizon"):  # checked before anything is sent
        run_backtest_distributed(BacktestSpec(["bitcoin"], ["naive"], horizon=0), where="engine")
    with pytest.raises(TypeError, match="takes a BacktestSpec, got list"):
        run_backtest_distributed(["bitcoin"], where="local")


def test_the_heavy_queue_is_routed():
    from crypto_ml.engine.app import make_app
    from crypto_ml.engine.heavy import BACKTEST_TASK
    from crypto_ml.settings.engine import HEAVY_QUEUE, EngineConfig

    app = make_app(EngineConfig(broker_url="memory://", result_backend="cache+memory://"))
    assert HEAVY_QUEUE in {q.name for q in app.conf.task_queues}
    assert app.amqp.router.route({}, BACKTEST_TASK)["queue"].name == HEAVY_QUEUE


@pytest.mark.parametrize("broker", ["embedded", "redis"], indirect=True)
def test_on_engine_workers_gives_the_in_process_result(broker, start_worker, in_process):
    """Two workers on the heavy queue share the units; the answers are the in-process ones."""
    from crypto_ml.engine.heavy import run_backtest_distributed

    workers = [start_worker(broker, queues="heavy", concurrency=1) for _ in range(2)]
    result = run_backtest_distributed(SPEC, where="engine", app=workers[0].app, timeout=240)
    _assert_same(result, in_process)
    logs = [w.log() for w in workers]
    computed = sum(len(re.findall(r"backtest \d+/\d+ \S+ \S+: \d+ folds", text)) for text in logs)
    assert computed == len(COINS) * len(MODELS)  # each unit once
    if broker.kind == "redis":  # the embedded broker's prefetch may hand every unit to one worker
        assert all(re.search(r"backtest \d+/\d+ ", text) for text in logs)


def _done(app, ids) -> set[str]:
    return {i for i in ids if app.backend.get_task_meta(i)["status"] == "SUCCESS"}


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_a_run_interrupted_by_a_killed_worker_finishes_with_only_what_is_missing(
    broker, start_worker, in_process
):
    """kill -9 the worker half-way: the same call on a new worker reuses every unit done (kept in
    the result backend under the unit's id), computes each missing one once, and gives the
    in-process result."""
    from crypto_ml.engine.heavy import BACKTEST_TASK, run_backtest_distributed, unit_task_id

    first = start_worker(broker, queues="heavy", concurrency=1, env={"CRYPTO_ML_ENGINE_TEST_DELAY": "1"})
    units = [u for u in SPEC.units() if isinstance(u, dict)]
    ids = [unit_task_id(BACKTEST_TASK, u) for u in units]
    failed: list[BaseException] = []

    def interrupted() -> None:
        try:
            run_backtest_distributed(SPEC, where="engine", app=first.app, timeout=25)
        except BaseException as exc:  # noqa: BLE001 - the caller gives up when the worker is gone
            failed.append(exc)

    caller = threading.Thread(target=interrupted, daemon=True)
    caller.start()
    deadline = time.monotonic() + 120
    while len(_done(first.app, ids)) < len(ids) // 2:
        assert time.monotonic() < deadline, first.log()[-3000:]
        time.sleep(0.1)
    os.killpg(first.proc.pid, signal.SIGKILL)  # the worker and its pool child, mid-unit
    first.proc.wait(timeout=10)
    before = _done(first.app, ids)
    assert len(ids) // 2 <= len(before) < len(ids)
    caller.join(timeout=90)
    assert failed and not caller.is_alive()  # the interrupted call ended without a result

    second = start_worker(broker, queues="heavy", concurrency=1)
    result = run_backtest_distributed(SPEC, where="engine", app=second.app, timeout=240)
    _assert_same(result, in_process)
    metas = {i: second.app.backend.get_task_meta(i)["result"]["ran"]["hostname"] for i in ids}
    assert {i for i, host in metas.items() if host == first.node} == before  # kept, not recomputed
    # The interrupted run's messages of the missing units were still queued, and the resumed run
    # sent them again (same ids): the second copy of each finds the answer and computes nothing.
    # (The copy the killed worker held comes back only after Redis's visibility timeout: not waited for.)
    missing = len(ids) - len(before)
    deadline = time.monotonic() + 60
    while len(re.findall(r"already done by", second.log())) < missing - 1:
        assert time.monotonic() < deadline, second.log()[-3000:]
        time.sleep(0.2)
    log = second.log()
    computed = re.findall(r"backtest \d+/\d+ (\S+ \S+): \d+ folds", log)
    assert len(computed) == len(set(computed)) == len(ids) - len(before)  # each missing unit once


def test_tensorflow_threads_share_the_cpus_among_the_pool_processes():
    from crypto_ml.engine.worker import tf_threads_for

    assert [tf_threads_for(c, cpus=2) for c in (1, 2, 3)] == [2, 1, 1]
    assert tf_threads_for(4, cpus=16) == 4


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_worker_sets_tensorflow_threads_from_its_concurrency(broker, start_worker):
    from crypto_ml.engine.worker import tf_threads_for

    def threads(worker, n: int) -> list[str]:  # each pool child logs its setting when ready
        deadline = time.monotonic() + 30
        while (
            len(
                found := re.findall(r"pool process \d+ ready \(preload=\w+, tf_threads=(\w+)\)", worker.log())
            )
            < n
        ):
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.2)
        return found

    worker = start_worker(broker, queues="heavy", concurrency=2, env={"CRYPTO_ML_TF_THREADS": ""})
    assert threads(worker, 2) == [str(tf_threads_for(2))] * 2
    pinned = start_worker(broker, queues="heavy", concurrency=1, env={"CRYPTO_ML_TF_THREADS": "3"})
    assert threads(pinned, 1) == ["3"]  # the operator's setting wins


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_the_backtest_command_on_the_engine_writes_what_it_writes_in_process(
    broker, start_worker, tmp_path, monkeypatch, capsys
):
    from crypto_ml.cli import main

    worker = start_worker(broker, queues="heavy", concurrency=1)
    for name in ("CRYPTO_ML_BROKER_URL", "CRYPTO_ML_RESULT_BACKEND", "CRYPTO_ML_ENGINE_KEY_PREFIX"):
        monkeypatch.setenv(name, worker.env[name])
    argv = [
        "backtest",
        "--coins",
        "bitcoin,ethereum",
        "--models",
        "naive,ar",
        "--period",
        "60",
        "--folds",
        "3",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(tmp_path / "here")]) == 0
    assert main([*argv, "--out", str(tmp_path / "engine"), "--on", "engine"]) == 0
    assert "--on engine" in capsys.readouterr().out
    name = "backtest_60d_3f_10h_folds.csv"
    engine, here = (pd.read_csv(tmp_path / where / name) for where in ("engine", "here"))
    pd.testing.assert_frame_equal(engine, here)
    assert len(re.findall(r"backtest \d+/4 \S+ \S+: 3 folds", worker.log())) == 4
