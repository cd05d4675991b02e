"""The forecaster contract, in the scikit-learn / sktime style.

- ``__init__`` stores hyperparameters as given (no validation, no I/O); every forecaster also takes
  the interval settings as keyword parameters (:data:`~crypto_ml.forecasting.intervals.INTERVAL_DEFAULTS`),
  so ``get_params`` / ``set_params`` / :func:`sklearn.base.clone` (from
  :class:`sklearn.base.BaseEstimator`) see them like any other hyperparameter.
- :meth:`BaseForecaster.fit` validates the history (closes, oldest first), calls ``_fit(y)``,
  calibrates the conformal intervals and returns ``self``; learned state lives in
  trailing-underscore attributes.
- :meth:`BaseForecaster.predict` starts with ``check_is_fitted``, validates the horizon and
  returns a float64 array of the next ``horizon`` daily closes, from ``_predict(horizon)``.
- :meth:`BaseForecaster.update` moves a fitted model to the end of a newer history, parameters kept.
- Prediction intervals (:mod:`crypto_ml.forecasting.intervals`) and safe serialization
  (:mod:`crypto_ml.forecasting.persistence`) come from two mixins.

Degenerate input raises :class:`ValueError` naming the problem rather than returning NaN:
too few points for the model (``min_points``), NaN or inf values, non-positive prices for models on
log returns, a constant series for models whose inputs are standardised log returns (their
variance is zero: there is nothing to learn and the scaler would divide by zero), and a horizon
that is not a positive int. Naive, drift and linear-trend models accept a constant series (they
forecast the constant).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crypto_ml.forecasting.checks import as_closes, check_horizon
from crypto_ml.forecasting.intervals import IntervalMixin
from crypto_ml.forecasting.persistence import PersistenceMixin


def recursive_forecast(step: Callable[[np.ndarray], float], window: np.ndarray, horizon: int) -> np.ndarray:
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


class BaseForecaster(IntervalMixin, PersistenceMixin, BaseEstimator):
    """Base class: owns public ``fit``/``predict``/``update``, validation and horizon handling.

    Subclasses set :attr:`name`, implement ``_fit(y)`` and ``_predict(horizon)``, list their
    learned attributes in :attr:`_state_attrs` and may override :meth:`min_points`. A subclass with
    hyperparameters of its own lists them in its ``__init__`` followed by the interval settings
    (keyword-only, the defaults below) and passes those on to ``super().__init__``.

    :param calibration_origins: conformal calibration walk-forward origins.
    :param calibration_steps: steps ahead whose calibration residuals are kept.
    :param interval_vol_window: normalise residuals by this many returns' volatility (0: off).
    :param interval_vol_ewm: normalise by the EWMA volatility with this decay (None: off).
    :param interval_aci_gamma: adaptive conformal inference step size (None: off).
    :param interval_half_life: weight recent residuals, halving every this many origins (None: off).
    :param interval_aci_sides: adaptive conformal inference per side (False: one level for both).
    :param interval_log: calibrate on log errors, bounds ``forecast * exp(q)`` (False: return errors).
    (See :mod:`crypto_ml.forecasting.intervals`.)
    """

    #: Registry name of the model (``"naive"``, ``"lstm"``, ...).
    name: ClassVar[str] = "base"
    #: Works on log prices/returns: prices must be > 0.
    _log_model: ClassVar[bool] = False
    #: Rejects a constant series (zero variance of its inputs).
    _needs_variation: ClassVar[bool] = False
    #: Learned attributes saved by :meth:`to_dict`, besides the common ones set by :meth:`fit`.
    _state_attrs: ClassVar[tuple[str, ...]] = ()
    _common_state: ClassVar[tuple[str, ...]] = (
        "n_obs_",
        "last_value_",
        "n_fit_",
        "interval_residuals_",
        "interval_vol_",
        "interval_log_",
        "interval_reason_",
    )

    def __init__(
        self,
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
        self.calibration_origins = calibration_origins
        self.calibration_steps = calibration_steps
        self.interval_vol_window = interval_vol_window
        self.interval_vol_ewm = interval_vol_ewm
        self.interval_aci_gamma = interval_aci_gamma
        self.interval_half_life = interval_half_life
        self.interval_log = interval_log
        self.interval_aci_sides = interval_aci_sides

    # -- contract -------------------------------------------------------------------------------
    def min_points(self) -> int:
        """The fewest closes :meth:`fit` accepts with the current hyperparameters."""
        return 1

    def fit(self, history: Any) -> BaseForecaster:
        """Learn from ``history`` (closes, oldest first) and return ``self``.

        Besides the model's parameters this calibrates the conformal intervals
        (``interval_residuals_``, see :meth:`_calibrate`) on the same history only.
        """
        y = self._fit_point(history)
        self.interval_vol_ = None
        self.interval_reason_ = None
        self.interval_residuals_ = self._calibrate(y)
        return self

    def _fit_point(self, history: Any) -> np.ndarray:
        """Validate and fit the point model only (no calibration); returns the closes."""
        y = self._validate_history(history)
        self._fit(y)
        self.n_obs_ = int(len(y))
        self.n_fit_ = int(len(y))  # closes the parameters were learned on (update keeps it)
        self.last_value_ = float(y[-1])
        return y

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

    def update(self, history: Any) -> BaseForecaster:
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
            raise ValueError(f"{type(self).__name__}.update needs at least {need} closes, got {len(y)}")
        bad = ~np.isfinite(y)
        if bad.any() or (self._log_model and np.any(y <= 0)):
            raise ValueError(
                f"{type(self).__name__}.update got NaN/inf or non-positive closes; clean them first"
            )
        self._update(y)
        if getattr(self, "interval_vol_", None) is not None:  # normalised intervals follow the regime
            vol = float(self._volatility_path(y)[-1])
            self.interval_vol_ = vol if np.isfinite(vol) and vol > 0 else self.interval_vol_
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
                f"{label} needs at least {need} closes with these parameters, got {len(y)} (too few points)"
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
