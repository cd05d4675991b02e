"""Model names -> forecaster classes, and the default model."""

from __future__ import annotations

from typing import Any

from crypto_ml.forecasting.base import BaseForecaster
from crypto_ml.forecasting.baselines import DriftForecaster, NaiveForecaster
from crypto_ml.forecasting.linear import AutoRegressiveForecaster, LinearTrendForecaster
from crypto_ml.forecasting.lstm import LSTMForecaster

MODELS: dict[str, type[BaseForecaster]] = {
    "naive": NaiveForecaster,
    "drift": DriftForecaster,
    "linear": LinearTrendForecaster,
    "ar": AutoRegressiveForecaster,
    "lstm": LSTMForecaster,
}

#: The default model of CryptoManager and ``crypto-ml predict``.
#: Naive, because no model met the bar "aggregate MASE < 1" in the walk-forward backtest of every
#: coin over its last 365 days (benchmarks/results/backtest_365.md: naive 10.96, lstm 10.80,
#: linear 42.29 on 67 common coins). Against naive itself the LSTM is only ~1 % better (paired MASE
#: ratio 0.99, better on 48/67 coins) at seconds per fit and a TensorFlow dependency; see the file.
DEFAULT_MODEL = "naive"


def make_forecaster(name: str, **params: Any) -> BaseForecaster:
    """A new, unfitted forecaster by registry name, e.g. ``make_forecaster("lstm", epochs=5)``."""
    try:
        cls = MODELS[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}") from None
    return cls(**params)
