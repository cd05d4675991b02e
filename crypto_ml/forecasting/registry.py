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
DEFAULT_MODEL = "naive"


def make_forecaster(name: str, **params: Any) -> BaseForecaster:
    """A new, unfitted forecaster by registry name, e.g. ``make_forecaster("lstm", epochs=5)``."""
    try:
        cls = MODELS[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}") from None
    return cls(**params)
