"""The LSTM: lazy TensorFlow import, thread setting, seed determinism, the advancing window,
Keras-native serialization. Tiny networks, one epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from crypto_ml.forecasting import LSTMForecaster, load_forecaster

TINY = dict(window=5, units=(3, 3), epochs=1, batch_size=16, min_train=5)


def random_walk(n: int = 90, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.04, n)))


@pytest.fixture(scope="module")
def fitted() -> LSTMForecaster:
    return LSTMForecaster(**TINY, seed=3).fit(random_walk())


def test_import_is_lazy_and_thread_env_is_applied():
    code = textwrap.dedent(
        """
        import sys
        import crypto_ml.forecasting, crypto_ml.forecasting.registry
        import crypto_ml.evaluation, crypto_ml.forecasting.manager, crypto_ml.storage.model_store
        import crypto_ml.commands.models
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules, "TF imported eagerly"
        assert "matplotlib" not in sys.modules, "matplotlib imported eagerly"
        from crypto_ml.forecasting.lstm import import_keras
        import_keras()
        import tensorflow as tf
        print(tf.config.threading.get_intra_op_parallelism_threads(),
              tf.config.threading.get_inter_op_parallelism_threads())
        """
    )
    env = {**os.environ, "CRYPTO_ML_TF_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-2:] == ["1", "1"]


def test_bad_thread_setting_is_a_clear_error(monkeypatch):
    from crypto_ml.forecasting.lstm import tf_threads

    monkeypatch.setenv("CRYPTO_ML_TF_THREADS", "two")
    with pytest.raises(ValueError, match="CRYPTO_ML_TF_THREADS must be a positive int"):
        tf_threads()
    monkeypatch.setenv("CRYPTO_ML_TF_THREADS", "2")
    assert tf_threads() == 2


def test_architecture_is_the_talks(fitted):
    layers = [type(layer).__name__ for layer in fitted.model_.layers]
    assert layers == ["LSTM", "Dropout", "LSTM", "Dropout", "Dense"]
    assert fitted.model_.layers[0].return_sequences and not fitted.model_.layers[2].return_sequences
    assert fitted.model_.input_shape == (None, 5, 1)
    # the defaults are the talk's sizes
    d = LSTMForecaster()
    assert (d.window, tuple(d.units)) == (50, (50, 100))
    assert fitted.mean_ == pytest.approx(np.diff(np.log(random_walk())).mean())


def test_same_seed_same_forecast_other_seed_differs(fitted):
    y = random_walk()
    again = LSTMForecaster(**TINY, seed=3).fit(y).predict(6)
    LSTMForecaster(**TINY, seed=3).fit(random_walk(seed=9))  # an unrelated fit in between
    np.testing.assert_array_equal(LSTMForecaster(**TINY, seed=3).fit(y).predict(6), again)
    np.testing.assert_array_equal(fitted.predict(6), again)
    other = LSTMForecaster(**TINY, seed=4).fit(y).predict(6)
    assert not np.array_equal(other, again)


def test_each_prediction_is_fed_into_the_next_window(fitted):
    seen, outputs = [], []
    real_step = fitted._step

    def spy(window):  # calls the real network; only records what it was given
        seen.append(np.array(window))
        outputs.append(real_step(window))
        return outputs[-1]

    fitted._step = spy
    try:
        path = fitted.predict(6)
    finally:
        del fitted._step
    assert len(seen) == 6
    np.testing.assert_array_equal(seen[0], fitted.last_z_)
    for k in range(1, 6):
        assert seen[k][-1] == pytest.approx(outputs[k - 1])  # step k sees step k-1's prediction
        np.testing.assert_array_equal(seen[k][:-1], seen[k - 1][1:])  # ... and the window slid
    # the price path is last_close * exp(cumsum(de-standardised z))
    expected = fitted.last_value_ * np.exp(np.cumsum(np.array(outputs) * fitted.scale_ + fitted.mean_))
    np.testing.assert_allclose(path, expected, rtol=1e-9)
    # and because the input changes, the predicted daily returns are not all the same
    assert np.ptp(np.diff(np.log(np.r_[fitted.last_value_, path]))) > 0


def test_keras_native_round_trip_gives_identical_forecast(fitted, tmp_path):
    fitted.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forecaster.json", "model.keras"]
    sidecar = json.loads((tmp_path / "forecaster.json").read_text())
    assert sidecar["model"] == "lstm" and sidecar["state"]["scale_"] == fitted.scale_
    loaded = load_forecaster(tmp_path)
    np.testing.assert_array_equal(loaded.predict(8), fitted.predict(8))
    (tmp_path / "model.keras").unlink()
    with pytest.raises(FileNotFoundError, match="LSTM weights missing"):
        load_forecaster(tmp_path)


def test_geometric_series_has_zero_return_variance():
    with pytest.raises(ValueError, match="zero variance"):
        LSTMForecaster(**TINY).fit(2.0 * np.exp(0.01 * np.arange(60)))
