"""TensorFlow as a good neighbour: thread settings applied in real worker processes (read back from
TensorFlow in their logs), a bad setting refused at start, and the model cache bounded by bytes."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest

from crypto_ml.engine.cache import KERAS_MODEL_OVERHEAD_BYTES, ModelCache, model_nbytes

TINY_LSTM = {
    "window": 5,
    "units": [2, 2],
    "epochs": 1,
    "batch_size": 8,
    "min_train": 5,
    "calibration_origins": 10,
    "calibration_steps": 3,
}
TF_LINE = r"TensorFlow in process (\d+): intra_op=(\d+) inter_op=(\d+)"


def _array(nbytes: int) -> np.ndarray:
    return np.zeros(nbytes, dtype=np.uint8)


# -- the byte bound ---------------------------------------------------------------------------------
def test_the_least_recently_used_models_are_evicted_when_the_bytes_would_cross_the_cap():
    cache = ModelCache(maxsize=100, max_bytes=1000)
    cache.put("a", _array(400))
    cache.put("b", _array(400))
    assert cache.get_or_load("a", lambda: pytest.fail("a is warm"))[1] is True  # a is now the most recent
    value, cached = cache.get_or_load("c", lambda: _array(400))
    assert not cached and value.nbytes == 400
    assert cache.keys() == ["a", "c"] and cache.nbytes == 800
    assert cache.stats()["evictions"] == 1 and cache.stats()["bytes"] == 800
    cache.put("d", _array(1000))  # exactly the cap: everything else goes
    assert cache.keys() == ["d"] and cache.nbytes == 1000 and cache.stats()["evictions"] == 3


def test_replacing_a_key_counts_its_bytes_once():
    cache = ModelCache(maxsize=10, max_bytes=1000)
    cache.put("a", _array(300))
    cache.put("a", _array(500))
    assert cache.nbytes == 500 and len(cache) == 1
    cache.clear()
    assert cache.nbytes == 0 and cache.stats()["size"] == 0


def test_the_count_bound_still_holds_with_a_byte_bound():
    cache = ModelCache(maxsize=2, max_bytes=10**6)
    for key in "abc":
        cache.put(key, _array(10))
    assert cache.keys() == ["b", "c"] and cache.nbytes == 20


def test_a_model_larger_than_the_cap_is_served_and_logged_not_kept(caplog):
    cache = ModelCache(maxsize=10, max_bytes=1000)
    cache.put("small", _array(100))
    with caplog.at_level(logging.WARNING, logger="crypto_ml.engine.cache"):
        value, cached = cache.get_or_load(("bitcoin", "lstm", "v1"), lambda: _array(3 * 2**20))
    assert value.nbytes == 3 * 2**20 and cached is False  # served
    assert cache.keys() == ["small"] and cache.nbytes == 100  # not kept, nothing else dropped
    assert cache.stats()["too_big"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "('bitcoin', 'lstm', 'v1') is 3.0 MB, more than the cache's 0.0 MB cap" in lines[0]
    assert "CRYPTO_ML_ENGINE_CACHE_MAX_MB" in lines[0] and "not kept warm" in lines[0]


def test_the_cache_refuses_a_cap_below_one_byte():
    with pytest.raises(ValueError, match="max_bytes must be >= 1"):
        ModelCache(maxsize=1, max_bytes=0)


def test_model_size_counts_the_arrays_a_model_holds_nested_included():
    from sklearn.linear_model import LinearRegression

    class Forecaster:
        pass

    inner = LinearRegression().fit(np.arange(20.0).reshape(10, 2), np.arange(10.0))
    f = Forecaster()
    f.coefs = np.zeros(100)  # 800 bytes
    f.history = {"last": np.zeros(10, dtype=np.float32), "same": f.coefs}  # 40, the same array once
    f.inner = inner
    f.name = "ar"
    expected = 800 + 40 + sum(v.nbytes for v in vars(inner).values() if isinstance(v, np.ndarray))
    assert model_nbytes(f) == expected


def test_an_lstm_weighs_its_weights_plus_the_measured_overhead():
    from crypto_ml.forecasting.lstm import LSTMForecaster

    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, 120)))
    params = {**TINY_LSTM, "units": tuple(TINY_LSTM["units"])}
    f = LSTMForecaster(**params).fit(closes)
    weights = sum(w.nbytes for w in f.model_.get_weights())
    arrays = sum(v.nbytes for v in vars(f).values() if isinstance(v, np.ndarray))
    assert weights > 0 and arrays > 0
    assert model_nbytes(f) == weights + KERAS_MODEL_OVERHEAD_BYTES + arrays


def test_the_process_cache_takes_its_byte_cap_from_the_environment(monkeypatch):
    from crypto_ml.engine.cache import process_cache, reset_process_state
    from crypto_ml.settings.engine import EngineConfig

    assert EngineConfig().cache_max_mb == 768
    with pytest.raises(ValueError, match="CRYPTO_ML_ENGINE_CACHE_MAX_MB must be an int >= 0, got 'lots'"):
        EngineConfig.from_env({"CRYPTO_ML_ENGINE_CACHE_MAX_MB": "lots"})
    with pytest.raises(ValueError, match=r"cache_max_mb \(CRYPTO_ML_ENGINE_CACHE_MAX_MB\) must be >= 1"):
        EngineConfig.from_env({"CRYPTO_ML_ENGINE_CACHE_MAX_MB": "0"})
    monkeypatch.setenv("CRYPTO_ML_ENGINE_CACHE_MAX_MB", "3")
    reset_process_state()
    try:
        assert process_cache().max_bytes == 3 * 2**20
    finally:
        reset_process_state()


def test_pool_processes_counts_one_tensorflow_for_the_one_process_pools():
    from celery.concurrency.prefork import TaskPool
    from celery.concurrency.solo import TaskPool as SoloPool
    from celery.concurrency.thread import TaskPool as ThreadPool

    from crypto_ml.engine.worker import pool_processes

    assert pool_processes("prefork", 4) == 4 and pool_processes(TaskPool, 2) == 2
    assert pool_processes("solo", 1) == pool_processes(SoloPool, 3) == pool_processes("threads", 8) == 1
    assert pool_processes(ThreadPool, 8) == 1


# -- real workers -----------------------------------------------------------------------------------
def _tf_lines(worker, n: int, timeout: float = 180.0) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    while len(found := re.findall(TF_LINE, worker.log())) < n:
        assert worker.alive(), worker.log()[-3000:]
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.5)
    return found


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_each_pool_process_reports_the_tensorflow_threads_it_applied(broker, start_worker):
    from crypto_ml.engine.worker import tf_threads_for

    shared = start_worker(
        broker,
        queues="heavy",
        concurrency=2,
        env={"CRYPTO_ML_TF_THREADS": "", "CRYPTO_ML_ENGINE_PRELOAD": "tf"},
    )
    lines = _tf_lines(shared, 2)
    want = str(tf_threads_for(2))
    assert len({pid for pid, _, _ in lines}) == 2  # one line from each pool child, read back from TF
    assert [(intra, inter) for _, intra, inter in lines] == [(want, want)] * 2
    pinned = start_worker(
        broker,
        queues="heavy",
        concurrency=1,
        env={"CRYPTO_ML_TF_THREADS": "3", "CRYPTO_ML_ENGINE_PRELOAD": "tf"},
    )
    assert [(intra, inter) for _, intra, inter in _tf_lines(pinned, 1)] == [("3", "3")]


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_worker_refuses_to_start_on_a_thread_setting_it_cannot_read(broker, start_worker):
    with pytest.raises(RuntimeError, match="worker exited with 1") as info:
        start_worker(broker, queues="heavy", concurrency=1, env={"CRYPTO_ML_TF_THREADS": "two"})
    refusals = [line for line in str(info.value).splitlines() if "refusing to start" in line]
    assert refusals == [
        ("crypto_ml engine: refusing to start: CRYPTO_ML_TF_THREADS must be a positive int, got 'two'")
    ]


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_a_heavy_lstm_unit_runs_with_the_workers_threads(broker, start_worker):
    from crypto_ml.engine.heavy import run_backtest_distributed
    from crypto_ml.evaluation.units import BacktestSpec

    worker = start_worker(broker, queues="heavy", concurrency=1, env={"CRYPTO_ML_TF_THREADS": "1"})
    assert re.findall(TF_LINE, worker.log()) == []  # preload=loader: TensorFlow not imported yet
    spec = BacktestSpec(["bitcoin"], ["lstm"], params={"lstm": TINY_LSTM}, period=20, folds=2, horizon=3)
    result = run_backtest_distributed(spec, where="engine", app=worker.app, timeout=300)
    assert len(result.folds) == 2
    assert [(intra, inter) for _, intra, inter in _tf_lines(worker, 1)] == [("1", "1")]


@pytest.mark.parametrize("broker", ["embedded"], indirect=True)
def test_the_stats_task_reports_the_bytes_the_worker_holds(broker, start_worker):
    worker = start_worker(
        broker, queues="predict,train", concurrency=1, env={"CRYPTO_ML_ENGINE_CACHE_MAX_MB": "64"}
    )
    request = {"coin": "bitcoin", "as_of": "2017-06-01", "model": "ar", "horizon": 3}
    worker.app.send_task("crypto_ml.predict", kwargs=request, queue="predict").get(timeout=120)
    stats = worker.app.send_task("crypto_ml.stats", queue="predict").get(timeout=60)
    cache = stats["cache"]
    assert cache["size"] == 1 and cache["max_bytes"] == 64 * 2**20
    assert 0 < cache["bytes"] < stats["rss_bytes"]


def test_a_thread_setting_tensorflow_no_longer_accepts_is_refused_in_one_line():
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import tensorflow as tf
        tf.constant(1.0) + 1.0  # initialises TensorFlow with its default threads
        from crypto_ml.forecasting.lstm import import_keras
        try:
            import_keras()
        except RuntimeError as exc:
            print("REFUSED", exc)
        """
    )
    env = {**os.environ, "CRYPTO_ML_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    refused = [line for line in proc.stdout.splitlines() if line.startswith("REFUSED")]
    assert len(refused) == 1
    assert "CRYPTO_ML_TF_THREADS=1 cannot be applied: TensorFlow was initialised" in refused[0]


def test_an_in_process_lstm_backtest_applies_the_thread_setting():
    import json
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from crypto_ml.evaluation import run_backtest
        result = run_backtest(["bitcoin"], ["lstm"], params={{"lstm": {json.dumps(TINY_LSTM)}}}, period=20,
                              folds=2, horizon=3)
        print("FOLDS", len(result.folds))
        """
    )
    env = {**os.environ, "CRYPTO_ML_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FOLDS 2" in proc.stdout
    assert [(intra, inter) for _, intra, inter in re.findall(TF_LINE, proc.stderr)] == [("1", "1")]
