"""The one list of models: names -> forecaster classes, cheap to import.

The DAG files read :data:`MODEL_NAMES` and :data:`DEFAULT_MODEL` at parse time, so this module
names each class by its import path and imports a model family only when it is asked for
(:func:`model_class`, :func:`make_forecaster`, :data:`MODELS`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crypto_ml.forecasting.base import BaseForecaster

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",  # noqa: F822 - defined lazily by the module's __getattr__ (PEP 562), below
    "MODEL_NAMES",
    "make_forecaster",
    "model_class",
]

#: Every model the project serves: registry name -> ``module:Class``.
MODEL_CLASSES: dict[str, str] = {
    "naive": "crypto_ml.forecasting.baselines:NaiveForecaster",
    "drift": "crypto_ml.forecasting.baselines:DriftForecaster",
    "linear": "crypto_ml.forecasting.linear:LinearTrendForecaster",
    "ar": "crypto_ml.forecasting.linear:AutoRegressiveForecaster",
    "lstm": "crypto_ml.forecasting.lstm:LSTMForecaster",
}
#: The models' names, in the registry's order.
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CLASSES)
#: Default model of the pipeline, CryptoManager and ``crypto-ml predict``. Naive, because no model
#: met the bar "aggregate MASE < 1" in the walk-forward backtest of every coin over its last 365
#: days (benchmarks/results/backtest_365.md: naive 10.96, lstm 10.80, linear 42.29 on 67 common
#: coins). Against naive itself the LSTM is only ~1 % better (paired MASE ratio 0.99, better on
#: 48/67 coins) at seconds per fit and a TensorFlow dependency; see that file.
DEFAULT_MODEL = "naive"


def model_class(name: str) -> type[BaseForecaster]:
    """The forecaster class of a registry name (case and blanks ignored); a ``ValueError`` naming
    the valid models for any other."""
    key = str(name).strip().lower()
    try:
        module, _, cls = MODEL_CLASSES[key].partition(":")
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}") from None
    return getattr(importlib.import_module(module), cls)


def make_forecaster(name: str, **params: Any) -> BaseForecaster:
    """A new, unfitted forecaster by registry name, e.g. ``make_forecaster("lstm", epochs=5)``."""
    return model_class(name)(**params)


def __getattr__(name: str) -> Any:
    """``MODELS``: name -> class for every model (imports every model family, TensorFlow excepted)."""
    if name == "MODELS":
        return {key: model_class(key) for key in MODEL_NAMES}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
