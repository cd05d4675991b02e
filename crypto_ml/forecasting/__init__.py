"""Forecasters of daily closes: one small scikit-learn style contract, five models.

>>> from crypto_ml.forecasting import make_forecaster
>>> f = make_forecaster("linear").fit(closes)     # a 1-D array, a Series or a get_df frame
>>> f.predict(10)                                 # the next 10 daily closes
>>> f.predict_interval(10, levels=(80, 95))       # {80: (lower, upper), 95: (...)}, conformal

Modules: ``base`` (the contract), ``intervals`` (conformal intervals), ``persistence`` (save and
load, no pickle), ``checks`` (input checks), one module per model family, ``registry``.

Importing this package does not import TensorFlow; the LSTM imports it when it is fitted or
loaded.
"""

from __future__ import annotations

from crypto_ml.forecasting.base import BaseForecaster, recursive_forecast
from crypto_ml.forecasting.baselines import DriftForecaster, NaiveForecaster
from crypto_ml.forecasting.checks import as_closes, check_horizon, check_levels
from crypto_ml.forecasting.intervals import (
    DEFAULT_LEVELS,
    INTERVAL_DEFAULTS,
    aci_level,
    aci_side_levels,
    conformal_bounds,
    level_key,
)
from crypto_ml.forecasting.linear import AutoRegressiveForecaster, LinearTrendForecaster
from crypto_ml.forecasting.lstm import LSTMForecaster
from crypto_ml.forecasting.persistence import load_forecaster
from crypto_ml.forecasting.registry import DEFAULT_MODEL, MODELS, make_forecaster

__all__ = [
    "DEFAULT_LEVELS",
    "DEFAULT_MODEL",
    "INTERVAL_DEFAULTS",
    "MODELS",
    "AutoRegressiveForecaster",
    "BaseForecaster",
    "DriftForecaster",
    "LSTMForecaster",
    "LinearTrendForecaster",
    "NaiveForecaster",
    "aci_level",
    "aci_side_levels",
    "as_closes",
    "check_horizon",
    "check_levels",
    "conformal_bounds",
    "level_key",
    "load_forecaster",
    "make_forecaster",
    "recursive_forecast",
]
