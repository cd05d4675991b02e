"""The talk's LSTM network, in Keras 3 on TensorFlow.

Architecture (as in the talk): ``LSTM(50, return_sequences=True) -> Dropout -> LSTM(100) ->
Dropout -> Dense(1)``, windows of 50 days, loss ``mse``, optimizer ``rmsprop``.

Normalisation: the network sees **standardised daily log returns**, ``z = (log(p_t / p_{t-1})
- mean_) / scale_`` with the mean and standard deviation of the training returns, and predicts
the next ``z``. Log returns are scale-free (one network design for a $0.01 coin and for bitcoin),
stationary enough to train on, and need no per-window rescaling at prediction time; the price path
is ``last_close * exp(cumsum(z * scale_ + mean_))``. A constant series (zero return variance) is
rejected with a ``ValueError``, as are non-positive prices. Training uses whole batches only: the
oldest ``n_windows % batch_size`` windows are dropped so that every fit reuses one traced train step.

Multi-step forecasts are recursive and the window **advances**: each predicted ``z`` is appended to
the window of the next step and the oldest value dropped (the talk's published loop kept feeding
the same window). See :func:`crypto_ml.forecasting.base.recursive_forecast`.

TensorFlow is imported only inside the methods that need it. Set ``CRYPTO_ML_TF_THREADS=N`` to
use N intra-op and N inter-op threads (applied before TensorFlow initialises; e.g. 1 or 2 on a
2-core box). A fixed ``seed`` gives the same forecast twice (``keras.utils.set_random_seed`` and
TensorFlow's deterministic ops).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from crypto_ml.forecasting.base import BaseForecaster, recursive_forecast

#: Keras weights file inside a saved LSTM folder (next to the JSON sidecar ``forecaster.json``).
KERAS_FILE = "model.keras"
THREADS_ENV = "CRYPTO_ML_TF_THREADS"

log = logging.getLogger(__name__)

_configured: dict[str, object] = {}
_TRAINERS: dict[tuple, object] = {}
_TRAIN_LOCK = threading.RLock()


def _np_dtype(var) -> str:
    dtype = var.dtype
    return getattr(dtype, "name", None) or str(dtype)


def tf_threads() -> int | None:
    """The thread count from ``CRYPTO_ML_TF_THREADS`` (``None``: TensorFlow's default)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a positive int, got {raw!r}") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive int, got {raw!r}")
    return n


def import_keras():
    """Import TensorFlow and Keras once, applying the thread setting and deterministic ops.

    Refuses (``RuntimeError``, one line) when ``CRYPTO_ML_TF_THREADS`` asks for threads that
    TensorFlow, initialised before this call by some other code, no longer accepts. Logs TensorFlow's
    own intra- and inter-op settings, read back, once per process (:func:`tf_thread_settings`)."""
    if "keras" in _configured:
        return _configured["keras"]
    threads = tf_threads()  # a bad setting is refused before TensorFlow is even imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    if threads is not None:
        _apply_threads(tf, threads)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass
    import keras

    _configured["threads"] = threads
    _configured["keras"] = keras
    settings = tf_thread_settings()
    log.info(
        "TensorFlow in process %d: intra_op=%d inter_op=%d (%s; 0 is TensorFlow's default, all cores)",
        os.getpid(),
        settings["intra_op"],
        settings["inter_op"],
        LSTMForecaster.describe_threads(),
    )
    return keras


def _apply_threads(tf, threads: int) -> None:
    threading_ = tf.config.threading
    try:
        threading_.set_intra_op_parallelism_threads(threads)
        threading_.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow was initialised by other code before this call
        now = (threading_.get_intra_op_parallelism_threads(), threading_.get_inter_op_parallelism_threads())
        if now != (threads, threads):
            raise RuntimeError(
                f"{THREADS_ENV}={threads} cannot be applied: TensorFlow was initialised in this process "
                f"before crypto_ml imported it (intra_op={now[0]}, inter_op={now[1]}); import it through "
                "crypto_ml.forecasting.lstm.import_keras first"
            ) from None


def tf_thread_settings() -> dict[str, int] | None:
    """TensorFlow's intra- and inter-op thread settings in this process, read back from TensorFlow
    (``{"intra_op", "inter_op"}``, 0 meaning its default), or ``None`` when it was not imported here."""
    if "keras" not in _configured:
        return None
    import tensorflow as tf

    return {
        "intra_op": int(tf.config.threading.get_intra_op_parallelism_threads()),
        "inter_op": int(tf.config.threading.get_inter_op_parallelism_threads()),
    }


class LSTMForecaster(BaseForecaster):
    """The talk's two-layer LSTM on standardised log returns (see the module docstring).

    :param window: days of returns the network sees (50 in the talk).
    :param units: sizes of the two LSTM layers ((50, 100) in the talk).
    :param dropout: dropout rate after each LSTM layer.
    :param epochs: training epochs.
    :param batch_size: training batch size.
    :param seed: random seed (weights, dropout, shuffling).
    :param min_train: the fewest training windows; :meth:`min_points` is
        ``window + min_train + 1`` closes.
    The interval settings (``calibration_origins``, ``interval_vol_ewm``, ...) are keyword
    parameters, as in :class:`~crypto_ml.forecasting.base.BaseForecaster`.
    """

    name = "lstm"
    _log_model = True
    _needs_variation = True
    _state_attrs = ("mean_", "scale_", "last_z_", "loss_")

    def __init__(
        self,
        window: int = 50,
        units: tuple[int, int] = (50, 100),
        dropout: float = 0.2,
        epochs: int = 10,
        batch_size: int = 64,
        seed: int = 0,
        min_train: int = 20,
        *,
        calibration_origins: int = 180,
        calibration_steps: int = 30,
        interval_vol_window: int = 0,
        interval_vol_ewm: float | None = 0.94,
        interval_aci_gamma: float | None = 0.005,
        interval_half_life: float | None = None,
        interval_log: bool = False,
        interval_aci_sides: bool = False,
    ) -> None:
        self.window = window
        self.units = units
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.min_train = min_train
        super().__init__(
            calibration_origins=calibration_origins,
            calibration_steps=calibration_steps,
            interval_vol_window=interval_vol_window,
            interval_vol_ewm=interval_vol_ewm,
            interval_aci_gamma=interval_aci_gamma,
            interval_half_life=interval_half_life,
            interval_log=interval_log,
            interval_aci_sides=interval_aci_sides,
        )

    def min_points(self) -> int:
        return int(self.window) + int(self.min_train) + 1

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_obs_") and hasattr(self, "model_")

    def _build(self, keras):
        u1, u2 = (int(u) for u in self.units)
        model = keras.Sequential(
            [
                keras.Input(shape=(int(self.window), 1)),
                keras.layers.LSTM(u1, return_sequences=True),
                keras.layers.Dropout(float(self.dropout)),
                keras.layers.LSTM(u2),
                keras.layers.Dropout(float(self.dropout)),
                keras.layers.Dense(1),
            ]
        )
        model.compile(loss="mse", optimizer="rmsprop")
        return model

    def _fit(self, y: np.ndarray) -> None:
        window = int(self.window)
        r = np.diff(np.log(y))
        mean, scale = float(r.mean()), float(r.std())
        if not scale > 1e-12:  # a constant series, or constant growth (up to round-off)
            raise ValueError(
                "LSTMForecaster: the log returns have zero variance (a constant series or constant "
                "growth), so they cannot be standardised; use the drift or ar model"
            )
        z = (r - mean) / scale
        x = np.lib.stride_tricks.sliding_window_view(z[:-1], window)[..., None].astype("float32")
        target = z[window:].astype("float32")
        batch = int(self.batch_size)
        if len(x) > batch:  # whole batches only: one traced train step is reused by every fit
            keep = len(x) - len(x) % batch
            x, target = x[-keep:], target[-keep:]
        keras = import_keras()
        with _TRAIN_LOCK:
            keras.utils.set_random_seed(int(self.seed))
            model = self._build(keras)  # seeded initial weights; becomes the fitted model
            trainer = self._trainer(keras)
            for var, value in zip(trainer.variables, model.variables):
                var.assign(value.value)
            for var in trainer.optimizer.variables:
                var.assign(np.zeros(var.shape, dtype=_np_dtype(var)))
            history = trainer.fit(
                x,
                target,
                epochs=int(self.epochs),
                batch_size=batch,
                shuffle=True,
                verbose=0,
            )
            model.set_weights(trainer.get_weights())
        self.model_ = model
        self.mean_ = mean
        self.scale_ = scale
        self.last_z_ = z[-window:].astype("float64")
        losses = history.history.get("loss") or [float("nan")]
        self.loss_ = float(losses[-1])

    def _trainer(self, keras):
        """A compiled training model shared by fits of the same architecture (building and
        tracing a new one costs ~1.5 s per fit); its weights and optimizer state are reset from
        the freshly seeded model before every fit, so results do not depend on earlier fits."""
        key = (int(self.window), tuple(int(u) for u in self.units), float(self.dropout), int(self.batch_size))
        trainer = _TRAINERS.get(key)
        if trainer is None:
            trainer = _TRAINERS[key] = self._build(keras)
            trainer.optimizer.build(trainer.trainable_variables)
        return trainer

    def _update_points(self) -> int:
        return int(self.window) + 1

    def _update(self, y: np.ndarray) -> None:
        r = np.diff(np.log(y))[-int(self.window) :]
        self.last_z_ = ((r - self.mean_) / self.scale_).astype("float64")  # the fitted scaling

    def _calibration_paths(self, y: np.ndarray, origins: np.ndarray, steps: int) -> np.ndarray:
        """Batched walk-forward paths for the conformal calibration: one ``predict_on_batch``
        per step over every origin's window (what :meth:`update` + :meth:`predict` would give
        origin by origin, ~100x faster)."""
        window = int(self.window)
        z = (np.diff(np.log(y)) - self.mean_) / self.scale_
        paths = np.full((len(origins), steps), np.nan)
        ok = np.flatnonzero(origins >= window)
        if not len(ok):
            return paths
        windows = np.stack([z[t - window : t] for t in origins[ok]]).astype("float32")
        preds = np.empty((len(ok), steps))
        for k in range(steps):
            out = np.asarray(self.model_.predict_on_batch(windows[..., None])).reshape(-1)
            preds[:, k] = out
            windows = np.concatenate([windows[:, 1:], out[:, None].astype("float32")], axis=1)
        returns = preds * self.scale_ + self.mean_
        paths[ok] = y[origins[ok]][:, None] * np.exp(np.cumsum(returns, axis=1))
        return paths

    def _step(self, window: np.ndarray) -> float:
        x = np.asarray(window, dtype="float32").reshape(1, -1, 1)
        return float(np.asarray(self.model_.predict_on_batch(x)).reshape(-1)[0])

    def _predict(self, horizon: int) -> np.ndarray:
        z = recursive_forecast(self._step, self.last_z_, horizon)
        returns = z * self.scale_ + self.mean_
        return self.last_value_ * np.exp(np.cumsum(returns))

    # -- serialization: Keras native format + the JSON sidecar ----------------------------------
    def _save_extra(self, directory: Path) -> None:
        self.model_.save(directory / KERAS_FILE)

    def _load_extra(self, directory: Path) -> None:
        path = directory / KERAS_FILE
        if not path.exists():
            raise FileNotFoundError(f"LSTM weights missing: {path}")
        keras = import_keras()
        self.model_ = keras.models.load_model(path, compile=False, safe_mode=True)

    def to_dict(self) -> dict:
        """Params and normalisation state; the weights are saved by :meth:`save` (``.keras``)."""
        data = super().to_dict()
        data["weights"] = KERAS_FILE
        return data

    @classmethod
    def describe_threads(cls) -> str:
        n = tf_threads()
        return f"{THREADS_ENV}={n}" if n is not None else f"{THREADS_ENV} unset (TF default)"
