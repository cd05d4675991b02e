"""Saving and loading forecasters, safely (no pickle).

:meth:`PersistenceMixin.to_dict` / :meth:`~PersistenceMixin.from_dict` turn a fitted forecaster into
JSON-able params and learned arrays and back; :meth:`~PersistenceMixin.save` writes them into a
folder (``forecaster.json``, plus the LSTM's ``.keras`` weights) and :func:`load_forecaster` reads
one back. A model saved before a parameter existed loads with that parameter's default (the
interval settings were class attributes before they became parameters, with the same defaults).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

if TYPE_CHECKING:
    from crypto_ml.forecasting.base import BaseForecaster

#: File written by :meth:`BaseForecaster.save` (params + learned state as JSON).
STATE_FILE = "forecaster.json"
FORMAT_VERSION = 1
#: The interval settings a saved model was calibrated with when its params do not name them (saved
#: before they were params, or before a setting existed): the behaviour of the code that saved it,
#: not today's defaults, so it loads and forecasts the same.
SAVED_BEFORE_SETTINGS: dict[str, Any] = {
    "calibration_origins": 180,
    "calibration_steps": 30,
    "interval_vol_window": 0,
    "interval_vol_ewm": 0.94,
    "interval_aci_gamma": 0.02,
    "interval_half_life": None,
    "interval_log": False,
    "interval_aci_sides": False,
}


class PersistenceMixin:
    """JSON serialization of a forecaster: its params (``get_params``) and the learned attributes
    named by ``_common_state`` and ``_state_attrs``."""

    def to_dict(self) -> dict:
        """Params and learned state as JSON-able values (arrays become lists)."""
        check_is_fitted(self)
        state = {}
        for attr in (*self._common_state, *self._state_attrs):
            # interval_residuals_ is missing on a model saved before intervals existed
            value = getattr(self, attr) if not attr.startswith("interval_") else getattr(self, attr, None)
            if isinstance(value, np.ndarray):
                state[attr] = {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
            elif isinstance(value, np.generic):
                state[attr] = value.item()
            else:
                state[attr] = value
        return {
            "format": FORMAT_VERSION,
            "model": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": jsonable(self.get_params(deep=False)),
            "state": state,
        }

    @classmethod
    def from_dict(cls, data: dict) -> BaseForecaster:
        """The inverse of :meth:`to_dict`."""
        if data.get("model") != cls.name:
            raise ValueError(f"{cls.__name__}.from_dict got a {data.get('model')!r} model")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in data["params"].items()}
        obj = cls(**{**SAVED_BEFORE_SETTINGS, **params})
        for attr, value in data["state"].items():
            if isinstance(value, dict) and "__ndarray__" in value:
                value = np.asarray(value["__ndarray__"], dtype=value["dtype"])
            setattr(obj, attr, value)
        return obj

    def save(self, directory: str | Path) -> Path:
        """Write the fitted forecaster into ``directory`` (created); returns the folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / STATE_FILE).write_text(json.dumps(self.to_dict(), indent=1))
        self._save_extra(directory)
        return directory

    def _save_extra(self, directory: Path) -> None:
        """Hook for models with more than JSON state (the LSTM's ``.keras`` file)."""

    def _load_extra(self, directory: Path) -> None:
        """Hook: the inverse of :meth:`_save_extra`."""


def jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars as Python numbers (dicts walked)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_forecaster(directory: str | Path) -> BaseForecaster:
    """Load a forecaster written by :meth:`BaseForecaster.save` (JSON and ``.keras`` only)."""
    from crypto_ml.forecasting.registry import MODEL_NAMES, model_class

    directory = Path(directory)
    path = directory / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved forecaster in {directory} (missing {STATE_FILE})")
    data = json.loads(path.read_text())
    name = data.get("model")
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r} in {path}; valid: {', '.join(MODEL_NAMES)}")
    obj = model_class(name).from_dict(data)
    obj._load_extra(directory)
    return obj
