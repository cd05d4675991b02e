"""Model names -> forecaster classes; the default model is :data:`DEFAULT_MODEL`."""

from __future__ import annotations

from typing import Any

# DEFAULT_MODEL and MODEL_NAMES live in crypto_ml.catalog, which the DAG files read at parse time
# without importing the models.
from crypto_ml.catalog import DEFAULT_MODEL, MODEL_NAMES
from crypto_ml.forecasting.base import BaseForecaster
from crypto_ml.forecasting.baselines import DriftForecaster, NaiveForecaster
from crypto_ml.forecasting.linear import AutoRegressiveForecaster, LinearTrendForecaster
from crypto_ml.forecasting.lstm import LSTMForecaster

__all__ = ["DEFAULT_MODEL", "MODELS", "MODEL_NAMES", "make_forecaster"]

MODELS: dict[str, type[BaseForecaster]] = {
    "naive": NaiveForecaster,
    "drift": DriftForecaster,
    "linear": LinearTrendForecaster,
    "ar": AutoRegressiveForecaster,
    "lstm": LSTMForecaster,
}

if tuple(MODELS) != MODEL_NAMES:  # pragma: no cover - a developer error, caught at import
    raise RuntimeError(f"crypto_ml.catalog.MODEL_NAMES {MODEL_NAMES} != registry {tuple(MODELS)}")


def make_forecaster(name: str, **params: Any) -> BaseForecaster:
    """A new, unfitted forecaster by registry name, e.g. ``make_forecaster("lstm", epochs=5)``."""
    try:
        cls = MODELS[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}") from None
    return cls(**params)
