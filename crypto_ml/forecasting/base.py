"""The forecaster contract, in the scikit-learn / sktime style.

- ``__init__`` stores hyperparameters as given (no validation, no I/O).
- :meth:`BaseForecaster.fit` validates the history (closes, oldest first), calls ``_fit(y)`` and
  returns ``self``; learned state lives in trailing-underscore attributes.
- :meth:`BaseForecaster.predict` starts with ``check_is_fitted``, validates the horizon and
  returns a float64 array of the next ``horizon`` daily closes, from ``_predict(horizon)``.
- ``get_params`` / ``set_params`` / :func:`sklearn.base.clone` come from
  :class:`sklearn.base.BaseEstimator`.
- Safe serialization (no pickle): :meth:`to_dict` / :meth:`from_dict` (JSON-able params and
  learned arrays) and :meth:`save` / :func:`load_forecaster` for a folder on disk.

Degenerate input raises :class:`ValueError` naming the problem rather than returning NaN:
too few points for the model (``min_points``), NaN or inf values, non-positive prices for models on
log returns, a constant series for models whose inputs are standardised log returns (their
variance is zero: there is nothing to learn and the scaler would divide by zero), and a horizon
that is not a positive int. Naive, drift and linear-trend models accept a constant series (they
forecast the constant).
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

#: File written by :meth:`BaseForecaster.save` (params + learned state as JSON).
STATE_FILE = "forecaster.json"
FORMAT_VERSION = 1


def as_closes(history: Any) -> np.ndarray:
    """A 1-D float64 array of closes from an array-like, a Series or a ``get_df`` frame."""
    if isinstance(history, pd.DataFrame):
        if "Close" not in history.columns:
            raise ValueError(
                f"a DataFrame history needs a 'Close' column, got columns {list(history.columns)}"
            )
        history = history["Close"]
    if isinstance(history, pd.Series):
        history = history.to_numpy()
    try:
        y = np.asarray(history, dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"history must be numeric closes: {exc}") from None
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"history must be 1-D (one close per day), got shape {y.shape}")
    return y


def check_horizon(horizon: Any) -> int:
    """``horizon`` as a positive int, or a ``ValueError`` saying what is wrong."""
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
        raise ValueError(f"horizon must be a positive int (days), got {horizon!r}")
    if horizon <= 0:
        raise ValueError(f"horizon must be a positive int (days), got {horizon}")
    return int(horizon)


def recursive_forecast(
    step: Callable[[np.ndarray], float], window: np.ndarray, horizon: int
) -> np.ndarray:
    """Multi-step forecast by recursion: each prediction is appended to the window that the next
    step sees (and the oldest value dropped), so the window advances one day per step.

    :param step: maps the current window (1-D, oldest first) to the next value.
    :param window: the last known inputs.
    :returns: the ``horizon`` predicted values, in the same units as ``window``.
    """
    window = np.array(window, dtype="float64", copy=True)
    out = np.empty(horizon, dtype="float64")
    for k in range(horizon):
        value = float(step(window.copy()))
        out[k] = value
        if len(window):
            window = np.roll(window, -1)
            window[-1] = value
    return out


class BaseForecaster(BaseEstimator):
    """Base class: owns public ``fit``/``predict``, validation and horizon handling.

    Subclasses set :attr:`name`, implement ``_fit(y)`` and ``_predict(horizon)``, list their
    learned attributes in :attr:`_state_attrs` and may override :meth:`min_points`.
    """

    #: Registry name of the model (``"naive"``, ``"lstm"``, ...).
    name: ClassVar[str] = "base"
    #: Works on log prices/returns: prices must be > 0.
    _log_model: ClassVar[bool] = False
    #: Rejects a constant series (zero variance of its inputs).
    _needs_variation: ClassVar[bool] = False
    #: Learned attributes saved by :meth:`to_dict`, besides the common ones set by :meth:`fit`.
    _state_attrs: ClassVar[tuple[str, ...]] = ()
    _common_state: ClassVar[tuple[str, ...]] = ("n_obs_", "last_value_", "n_fit_")

    # -- contract -------------------------------------------------------------------------------
    def min_points(self) -> int:
        """The fewest closes :meth:`fit` accepts with the current hyperparameters."""
        return 1

    def fit(self, history: Any) -> "BaseForecaster":
        """Learn from ``history`` (closes, oldest first) and return ``self``."""
        y = self._validate_history(history)
        self._fit(y)
        self.n_obs_ = int(len(y))
        self.n_fit_ = int(len(y))  # closes the parameters were learned on (update keeps it)
        self.last_value_ = float(y[-1])
        return self

    def predict(self, horizon: int = 10) -> np.ndarray:
        """The next ``horizon`` daily closes after the end of the fitted history."""
        check_is_fitted(self)
        horizon = check_horizon(horizon)
        out = np.asarray(self._predict(horizon), dtype="float64").reshape(-1)
        if out.shape != (horizon,):
            raise RuntimeError(f"{type(self).__name__} returned {out.shape}, expected ({horizon},)")
        if not np.all(np.isfinite(out)):
            raise ValueError(
                f"{type(self).__name__} produced a non-finite forecast ({out.tolist()}); "
                "the history is probably degenerate for this model"
            )
        return out

    def update(self, history: Any) -> "BaseForecaster":
        """Move a fitted model to the end of a newer ``history`` without refitting it.

        The learned parameters stay; only the state a forecast starts from moves: the last close,
        the recent returns or window, the position on the time axis. This is how a version trained
        once a week serves the days after its training window (like sktime's ``update`` with
        ``update_params=False``). ``history`` is the same series the model was fitted on (same
        first day), extended by newer days; updating again with another history (say, of an
        earlier day, down to the fitted one) moves the state there. Returns ``self``.
        """
        check_is_fitted(self)
        y = as_closes(history)
        need = int(self._update_points())
        if len(y) < max(need, 1):
            raise ValueError(
                f"{type(self).__name__}.update needs at least {need} closes, got {len(y)}"
            )
        bad = ~np.isfinite(y)
        if bad.any() or (self._log_model and np.any(y <= 0)):
            raise ValueError(
                f"{type(self).__name__}.update got NaN/inf or non-positive closes; clean them first"
            )
        self._update(y)
        self.n_obs_ = int(len(y))
        self.last_value_ = float(y[-1])
        return self

    def _update_points(self) -> int:
        """The fewest closes :meth:`update` needs (the state a forecast starts from)."""
        return 1

    def _update(self, y: np.ndarray) -> None:
        """Hook of :meth:`update`: move the forecast state to the end of ``y`` (params kept)."""

    def _fit(self, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, horizon: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_obs_")

    # -- validation -----------------------------------------------------------------------------
    def _validate_history(self, history: Any) -> np.ndarray:
        y = as_closes(history)
        label = type(self).__name__
        need = int(self.min_points())
        if len(y) < need:
            raise ValueError(
                f"{label} needs at least {need} closes with these parameters, got {len(y)} "
                "(too few points)"
            )
        bad = ~np.isfinite(y)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"history contains {int(bad.sum())} NaN/inf value(s) (first at position {first}); "
                "clean or drop them before fitting"
            )
        if self._log_model and np.any(y <= 0):
            first = int(np.flatnonzero(y <= 0)[0])
            raise ValueError(
                f"{label} works on log returns and needs positive prices; found non-positive "
                f"price {y[first]!r} at position {first}"
            )
        if self._needs_variation and np.ptp(y) == 0:
            raise ValueError(
                f"{label} got a constant series (all {y[0]!r}): its log returns have zero variance, "
                "so there is nothing to learn; use the naive model for a constant series"
            )
        return y

    # -- serialization (JSON, no pickle) --------------------------------------------------------
    def to_dict(self) -> dict:
        """Params and learned state as JSON-able values (arrays become lists)."""
        check_is_fitted(self)
        state = {}
        for attr in (*self._common_state, *self._state_attrs):
            value = getattr(self, attr)
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
            "params": _jsonable(self.get_params(deep=False)),
            "state": state,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BaseForecaster":
        """The inverse of :meth:`to_dict`."""
        if data.get("model") != cls.name:
            raise ValueError(f"{cls.__name__}.from_dict got a {data.get('model')!r} model")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in data["params"].items()}
        obj = cls(**params)
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def load_forecaster(directory: str | Path) -> BaseForecaster:
    """Load a forecaster written by :meth:`BaseForecaster.save` (JSON and ``.keras`` only)."""
    from crypto_ml.forecasting.registry import MODELS

    directory = Path(directory)
    path = directory / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"no saved forecaster in {directory} (missing {STATE_FILE})")
    data = json.loads(path.read_text())
    name = data.get("model")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} in {path}; valid: {', '.join(MODELS)}")
    obj = MODELS[name].from_dict(data)
    obj._load_extra(directory)
    return obj
