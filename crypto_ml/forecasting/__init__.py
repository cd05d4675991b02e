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

import importlib
from typing import Any

#: Public name -> the module that defines it; imported on first access (PEP 562), so importing
#: this package (or :mod:`crypto_ml.forecasting.registry` at DAG parse time) stays cheap.
_EXPORTS = {
    "BaseForecaster": "base",
    "recursive_forecast": "base",
    "DriftForecaster": "baselines",
    "NaiveForecaster": "baselines",
    "as_closes": "checks",
    "check_horizon": "checks",
    "check_levels": "checks",
    "DEFAULT_LEVELS": "intervals",
    "INTERVAL_DEFAULTS": "intervals",
    "aci_level": "intervals",
    "aci_side_levels": "intervals",
    "conformal_bounds": "intervals",
    "level_key": "intervals",
    "AutoRegressiveForecaster": "linear",
    "LinearTrendForecaster": "linear",
    "LSTMForecaster": "lstm",
    "load_forecaster": "persistence",
    "DEFAULT_MODEL": "registry",
    "MODELS": "registry",
    "make_forecaster": "registry",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
