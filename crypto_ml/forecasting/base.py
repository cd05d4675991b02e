"""The forecaster contract, in the scikit-learn / sktime style.

- ``__init__`` stores hyperparameters as given (no validation, no I/O).
- :meth:`BaseForecaster.fit` validates the history (closes, oldest first), calls ``_fit(y)`` and
  returns ``self``; learned state lives in trailing-underscore attributes.
- :meth:`BaseForecaster.predict` starts with ``check_is_fitted``, validates the horizon and
  returns a float64 array of the next ``horizon`` daily closes, from ``_predict(horizon)``.
- ``get_params`` / ``set_params`` / :func:`sklearn.base.clone` come from
  :class:`sklearn.base.BaseEstimator`.
- :meth:`BaseForecaster.predict_interval` gives lower and upper bounds of the path for any levels
  (default 80 % and 95 %): model-native when a model implements ``_predict_native_interval``
  (none of the shipped models has a native one), otherwise **conformal**, calibrated at
  :meth:`fit` on walk-forward residuals of the training window only (see
  :meth:`BaseForecaster._calibrate`), so an interval never uses data after the last fitted close:
  by default the residuals are divided by the EWMA volatility at their origin (normalised
  conformal) and the quantile level is adapted along the walk (adaptive conformal inference).
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

#: Interval levels (percent) given when none are asked for.
DEFAULT_LEVELS: tuple[int, ...] = (80, 95)
#: Fewest one-step calibration residuals for conformal intervals (fewer: no intervals). With
#: fewer than 39 the 95 % bounds are just the extreme residuals (the conformal rank falls outside
#: the sample); with 10, a young coin's ten up days made a "95 % interval" entirely above +2 %.
MIN_CALIBRATION = 40
#: Returns before an exponentially weighted volatility counts (fewer: NaN).
EWM_MIN_RETURNS = 20
#: Known residuals before adaptive conformal inference starts updating its level.
ACI_BURN_IN = 20


def check_levels(levels: Any) -> tuple[float, ...]:
    """Interval levels in percent, each strictly between 0 and 100, or a ``ValueError``."""
    if isinstance(levels, (int, float)) and not isinstance(levels, bool):
        levels = (levels,)
    try:
        out = tuple(float(v) for v in levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be numbers in percent between 0 and 100, got {levels!r}") from None
    for v in out:
        if not (0.0 < v < 100.0) or not np.isfinite(v):
            raise ValueError(f"interval level must be a percentage strictly between 0 and 100, got {v!r}")
    if not out:
        raise ValueError("levels must name at least one interval level, e.g. (80, 95)")
    return out


def level_key(level: float) -> str:
    """JSON key of a level: ``80`` -> ``"80"``, ``97.5`` -> ``"97.5"``."""
    return f"{float(level):g}"


def recent_volatility(y: np.ndarray, window: int) -> float:
    """Standard deviation of the last ``window`` daily log returns of ``y`` (positive prices),
    NaN with fewer than ``window`` returns."""
    if window < 2 or len(y) < window + 1:
        return float("nan")
    r = np.diff(np.log(y[-(window + 1):]))
    return float(np.std(r, ddof=1))


def volatility_path(y: np.ndarray, window: int = 0, ewm: float | None = None) -> np.ndarray:
    """Volatility known at each close of ``y`` (positive prices): ``out[t]`` uses the log returns
    up to close ``t`` only. With ``ewm`` (a RiskMetrics decay, e.g. 0.94) the exponentially weighted
    root mean square of the returns (NaN before :data:`EWM_MIN_RETURNS` returns); otherwise the
    standard deviation of the last ``window`` returns (NaN before ``window`` returns)."""
    y = np.asarray(y, dtype="float64")
    out = np.full(len(y), np.nan)
    if len(y) < 2 or not np.all(y > 0):
        return out
    r = pd.Series(np.diff(np.log(y)))
    if ewm:
        var = (r * r).ewm(alpha=1.0 - float(ewm), adjust=True).mean().to_numpy().copy()
        var[: EWM_MIN_RETURNS - 1] = np.nan
    elif window >= 2:
        var = r.rolling(window).var(ddof=1).to_numpy()
    else:
        return out
    out[1:] = np.sqrt(np.maximum(var, 0.0))
    return out


def aci_level(residuals: Any, level: float, gamma: float, step: int, burn_in: int = ACI_BURN_IN) -> float:
    """Adaptive conformal inference (Gibbs & Candes 2021) run through one step's calibration
    residuals (oldest origin first): the level, in percent, to read the conformal quantiles at now.

    At each origin ``j`` the interval is :func:`conformal_bounds` of the residuals already known
    then (origins ``<= j - step``: a ``step``-day-ahead error is seen ``step`` days later) at the
    running level ``1 - a``; a miss raises it, a hit lowers it:
    ``a <- a + gamma * (alpha - miss)``. Over the calibration walk the share of misses is pulled
    to ``alpha`` whatever the distribution does, so when the recent errors outgrow the older ones
    the level read at the end is higher than nominal (and lower in a calming market). Starts after
    ``burn_in`` known residuals; returned clipped to (0, 100) exclusive.
    """
    import bisect

    r = [float(v) for v in residuals]
    alpha = 1.0 - float(level) / 100.0
    a = alpha
    known: list[float] = []
    nxt = 0
    for j, value in enumerate(r):
        while nxt <= j - step:
            bisect.insort(known, r[nxt])
            nxt += 1
        n = len(known)
        if n < burn_in:
            continue
        eff = min(max(a, 0.0), 1.0)
        hi = int(np.ceil((n + 1) * (1.0 - eff / 2.0)))
        lo = int(np.floor((n + 1) * (eff / 2.0)))
        lower = known[min(max(lo, 1), n) - 1]
        upper = known[min(max(hi, 1), n) - 1]
        miss = 0.0 if lower <= value <= upper else 1.0
        a += gamma * (alpha - miss)
    return float(min(max(100.0 * (1.0 - a), 1e-6), 100.0 - 1e-6))


def conformal_bounds(residuals: np.ndarray, level: float, half_life: float | None = None) -> tuple[float, float]:
    """Lower and upper split-conformal quantiles of signed ``residuals`` for ``level`` percent.

    With ``n`` residuals the upper bound is the ``ceil((n + 1)(1 - a/2))``-th smallest and the
    lower the ``floor((n + 1) a/2)``-th (``a = 1 - level/100``), clipped to the sample's range
    when ``n`` is too small for that rank: the usual finite-sample correction, so that under
    exchangeability the interval covers at least ``level`` percent.

    With ``half_life`` (in residuals; ``residuals`` oldest first) the quantiles are weighted,
    the newest residual weighing 1 and one ``half_life`` older 1/2 (non-exchangeable conformal,
    Barber et al. 2023): the test point's own weight 1 sits at +/-inf, so the bounds keep the
    finite-sample correction.
    """
    r = np.asarray(residuals, dtype="float64")
    n = len(r)
    alpha = 1.0 - float(level) / 100.0
    if half_life:
        w = 0.5 ** (np.arange(n)[::-1] / float(half_life))
        order = np.argsort(r, kind="stable")
        rs, ws = r[order], w[order]
        total = ws.sum() + 1.0  # + the test point's weight, at +inf (upper) / -inf (lower)
        up = np.flatnonzero(np.cumsum(ws) >= (1.0 - alpha / 2.0) * total)
        down = np.flatnonzero(np.cumsum(ws[::-1]) >= (1.0 - alpha / 2.0) * total)
        return float(rs[::-1][down[0]] if len(down) else rs[0]), float(rs[up[0]] if len(up) else rs[-1])
    r = np.sort(r)
    hi = int(np.ceil((n + 1) * (1.0 - alpha / 2.0)))
    lo = int(np.floor((n + 1) * (alpha / 2.0)))
    return float(r[max(lo, 1) - 1]), float(r[min(hi, n) - 1])


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
    _common_state: ClassVar[tuple[str, ...]] = (
        "n_obs_", "last_value_", "n_fit_", "interval_residuals_", "interval_vol_",
    )
    #: Conformal calibration: walk-forward origins (the last days of the training window) and
    #: the steps ahead whose residuals are kept; beyond the last step the bounds widen by
    #: ``sqrt(h / steps)``.
    calibration_origins: ClassVar[int] = 180
    calibration_steps: ClassVar[int] = 30
    #: Normalised conformal: residuals are divided by the volatility of the ``interval_vol_window``
    #: daily log returns up to their origin, and bounds multiplied by the volatility up to the
    #: last close (``interval_vol_``), so intervals widen and narrow with the market's regime.
    #: 0: no simple-window normalisation (the default uses the EWMA volatility below).
    interval_vol_window: ClassVar[int] = 0
    #: Normalised conformal with an exponentially weighted volatility (RiskMetrics decay 0.94,
    #: the default; None: off). Takes precedence over ``interval_vol_window``.
    interval_vol_ewm: ClassVar[float | None] = 0.94
    #: Adaptive conformal inference (:func:`aci_level`): step size ``gamma`` of the level's
    #: update along the calibration walk (None: off, the quantiles are read at the nominal level).
    #: Default 0.02 with the EWMA normalisation: chosen among plain, normalised and adaptive
    #: variants on the bundled data's two years before the last (``benchmarks/results/intervals.md``).
    interval_aci_gamma: ClassVar[float | None] = 0.02
    #: Recent calibration residuals weigh more: weight halves every ``interval_half_life``
    #: origins (None: all weigh the same, plain split-conformal).
    interval_half_life: ClassVar[float | None] = None

    # -- contract -------------------------------------------------------------------------------
    def min_points(self) -> int:
        """The fewest closes :meth:`fit` accepts with the current hyperparameters."""
        return 1

    def fit(self, history: Any) -> "BaseForecaster":
        """Learn from ``history`` (closes, oldest first) and return ``self``.

        Besides the model's parameters this calibrates the conformal intervals
        (``interval_residuals_``, see :meth:`_calibrate`) on the same history only.
        """
        y = self._fit_point(history)
        self.interval_vol_ = None
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

    # -- prediction intervals -------------------------------------------------------------------
    def _calibrate(self, y: np.ndarray) -> list[list[float]] | None:
        """Walk-forward residuals of the training window, per step ahead (ragged lists).

        A copy of the model (same hyperparameters) is fitted on the closes up to the first
        origin ``t0`` (``calibration_origins`` days before the end), then moved day by day with
        :meth:`update` (parameters kept, as a weekly trained version serves its days) to each
        origin ``t`` from ``t0`` to the second-to-last close, and forecasts up to
        ``calibration_steps`` days. The residual of step ``h`` is the return error
        ``(y[t + h] - forecast[h]) / y[t]``, scored only where ``y[t + h]`` is inside the
        training window: no residual uses a close after the last one given to :meth:`fit`. With
        ``interval_vol_window`` > 0 each residual is divided by the volatility of the returns up to
        its origin (normalised conformal; plain when the window is too short for that).

        Returns ``None`` (no conformal intervals) when the history leaves fewer than
        :data:`MIN_CALIBRATION` one-step residuals, or when the copy cannot be fitted.
        """
        walk = self._calibration_walk(y)
        return None if walk is None else self._calibration_residuals(y, *walk)

    def _calibration_walk(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The calibration walk of :meth:`_calibrate`: its origins and forecast paths
        (``len(origins)`` x ``calibration_steps``), or None when too short or unfittable."""
        n = len(y)
        need = self.min_calibration_points() - MIN_CALIBRATION
        t0 = max(need - 1, n - 1 - int(self.calibration_origins))
        origins = np.arange(t0, n - 1)
        if len(origins) < MIN_CALIBRATION:
            return None
        from sklearn.base import clone

        cal = clone(self)
        try:
            cal._fit_point(y[: t0 + 1])
            return origins, cal._calibration_paths(y, origins, int(self.calibration_steps))
        except (ValueError, FloatingPointError):
            return None

    def _calibration_residuals(
        self, y: np.ndarray, origins: np.ndarray, paths: np.ndarray
    ) -> list[list[float]] | None:
        """Residuals per step from a calibration walk (normalised when configured; sets
        ``interval_vol_``), or None with fewer than :data:`MIN_CALIBRATION` one-step ones."""
        n = len(y)
        steps = paths.shape[1]
        normalised = self._normalised() and bool(np.all(y > 0))
        vols = self._volatility_path(y) if normalised else None
        for scaled in (True, False) if normalised else (False,):
            out: list[list[float]] = [[] for _ in range(steps)]
            for j, t in enumerate(origins):
                base = y[t]
                scale = vols[t] if scaled else 1.0
                if not base > 0 or not scale > 0:
                    continue
                for h in range(1, min(steps, n - 1 - t) + 1):
                    value = paths[j, h - 1]
                    if np.isfinite(value):
                        out[h - 1].append(float((y[t + h] - value) / base / scale))
            if len(out[0]) >= MIN_CALIBRATION:  # else: too short to normalise, try plain
                self.interval_vol_ = float(vols[-1]) if scaled else None
                return [r for r in out if r]
        self.interval_vol_ = None
        return None

    def _normalised(self) -> bool:
        return bool(self.interval_vol_ewm) or int(self.interval_vol_window) > 0

    def _volatility_path(self, y: np.ndarray) -> np.ndarray:
        """The volatility known at each close of ``y`` that normalises the residuals."""
        return volatility_path(y, int(self.interval_vol_window), self.interval_vol_ewm)

    def min_calibration_points(self) -> int:
        """The fewest closes :meth:`fit` needs to calibrate intervals (fewer: points only)."""
        base = max(int(self.min_points()), int(self._update_points()), 2)
        if self.interval_vol_ewm:  # the first origin needs a volatility
            base = max(base, EWM_MIN_RETURNS + 1)
        elif int(self.interval_vol_window) > 0:
            base = max(base, int(self.interval_vol_window) + 1)
        return base + MIN_CALIBRATION

    def _calibration_paths(self, y: np.ndarray, origins: np.ndarray, steps: int) -> np.ndarray:
        """Forecast paths (``len(origins)`` x ``steps``) of this fitted calibration copy from
        each origin, moving it there with :meth:`update`. Models override this with a batched
        version when one forecast is expensive (the LSTM); NaN marks a failed origin."""
        paths = np.full((len(origins), steps), np.nan)
        for j, t in enumerate(origins):
            try:
                if t + 1 != self.n_obs_:
                    self.update(y[: t + 1])
                paths[j] = self.predict(steps)
            except ValueError:
                continue
        return paths

    def _predict_native_interval(
        self, horizon: int, levels: tuple[float, ...]
    ) -> dict[float, tuple[np.ndarray, np.ndarray]] | None:
        """Hook for models with their own intervals: ``{level: (lower, upper)}`` or None."""
        return None

    def interval_method(self) -> str | None:
        """``"native"``, ``"conformal"`` or None (no intervals: too short a training window)."""
        check_is_fitted(self)
        if type(self)._predict_native_interval is not BaseForecaster._predict_native_interval:
            return "native"
        return "conformal" if getattr(self, "interval_residuals_", None) else None

    def predict_interval(
        self, horizon: int = 10, levels: Any = DEFAULT_LEVELS
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Lower and upper bounds of the next ``horizon`` closes for each level (percent).

        Returns ``{level: (lower, upper)}``, two float64 arrays of ``horizon`` closes each,
        around :meth:`predict`'s path. Conformal bounds are ``path + q * vol * last_close`` with ``vol``
        the recent volatility (``interval_vol_``; 1 for plain conformal) and ``q``
        the conformal quantiles (:func:`conformal_bounds`) of the step's calibration residuals;
        steps beyond ``calibration_steps`` use the last step's quantiles times
        ``sqrt(h / steps)``. Bounds are clipped at 0 (a price).

        Raises
        ------
        ValueError
            When the model has no intervals: too short a training window to calibrate (fewer
            than ``MIN_CALIBRATION`` one-step residuals) or a model saved before intervals existed.
        """
        check_is_fitted(self)
        horizon = check_horizon(horizon)
        levels = check_levels(levels)
        native = self._predict_native_interval(horizon, levels)
        if native is not None:
            return native
        residuals = getattr(self, "interval_residuals_", None)
        if not residuals:
            raise ValueError(
                f"{type(self).__name__} has no prediction intervals: fitted on "
                f"{getattr(self, 'n_fit_', '?')} closes, calibrating them needs at least "
                f"{self.min_calibration_points()} (or the model was saved before intervals existed)"
            )
        point = self.predict(horizon)
        out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        steps = len(residuals)
        order = sorted(levels)
        lower = {level: np.empty(horizon) for level in order}
        upper = {level: np.empty(horizon) for level in order}
        vol = getattr(self, "interval_vol_", None)
        for h in range(1, horizon + 1):
            k = min(h, steps)
            read = self._read_levels(order, k)
            scale = np.sqrt(h / k) if h > k else 1.0
            if vol is not None:
                scale *= vol
            for level in order:
                lo, hi = conformal_bounds(residuals[k - 1], read[level], self.interval_half_life)
                lower[level][h - 1] = point[h - 1] + lo * scale * self.last_value_
                upper[level][h - 1] = point[h - 1] + hi * scale * self.last_value_
        for level in order:
            # A close is never negative: both bounds are clipped at 0 (clipping only the lower one
            # would order them wrongly when the whole band lies below 0).
            out[level] = (np.maximum(lower[level], 0.0), np.maximum(upper[level], 0.0))
        for inner, outer in zip(order, order[1:]):
            (lo_i, hi_i), (lo_o, hi_o) = out[inner], out[outer]
            # A band wholly below zero is clipped to [0, 0] at both levels (a close's floor; see the
            # clipping above): that step says "at most 0" for both, not two coinciding bands.
            same = np.flatnonzero((lo_o >= lo_i) & (hi_o <= hi_i) & (hi_o > 0))
            if len(same):
                raise ValueError(
                    f"{type(self).__name__} has no prediction intervals: the {outer:g} % and {inner:g} % bands "
                    f"coincide at step {int(same[0]) + 1} (tied calibration residuals), so neither says how "
                    "uncertain the forecast is"
                )
        return {level: out[level] for level in levels}

    def _read_levels(self, order: list[float], step: int) -> dict[float, float]:
        """The level each of ``order`` (ascending nominal levels) is read at for step ``step``:
        :meth:`_adapted_level`, kept inside the calibration sample and apart. With ``n`` residuals
        a level above ``100 (1 - 2 / (n + 1))`` would read past the sample's extremes, so it is
        read there; and each level is read at least ``200 / (n + 1)`` points below the next
        higher one, which moves both conformal ranks by one or more, so the bands of two levels
        never coincide (adaptive conformal inference can push an 80 % and a 95 % level both to
        the sample's extremes)."""
        n = len(self.interval_residuals_[step - 1])
        gap = 200.0 / (n + 1) * 1.001  # a little over one rank, so float rounding cannot merge two ranks
        read = {level: self._adapted_level(level, step) for level in order}
        ceiling = 100.0 * (1.0 - 2.0 / (n + 1))
        for level in reversed(order):
            read[level] = min(read[level], ceiling)
            ceiling = read[level] - gap
        low = order[0]
        if read[low] <= 0:
            raise ValueError(
                f"{type(self).__name__} has no prediction intervals: {n} calibration residuals at step {step} "
                f"cannot tell the {', '.join(f'{v:g}' for v in order)} % levels apart"
            )
        return read

    def _adapted_level(self, level: float, step: int) -> float:
        """The level to read step ``step``'s quantiles at: ``level`` itself, or with
        ``interval_aci_gamma`` the adaptive conformal level at the end of the calibration walk
        (cached per fit: the residuals do not change with :meth:`update`)."""
        gamma = self.interval_aci_gamma
        if not gamma:
            return level
        residuals = self.interval_residuals_
        cache = getattr(self, "_aci_cache", None)
        if cache is None or cache[0] is not residuals:
            cache = (residuals, {})
            self._aci_cache = cache
        key = (float(level), int(step), float(gamma))
        if key not in cache[1]:
            cache[1][key] = aci_level(residuals[step - 1], level, float(gamma), step)
        return cache[1][key]

    def predict_with_intervals(self, horizon: int = 10, levels: Any = DEFAULT_LEVELS) -> dict[str, Any]:
        """JSON-able ``{values, intervals, interval_method, interval_reason}``: the path, and
        ``{"80": {"lower": [...], "upper": [...]}, ...}`` (None when the model has none, and then
        ``interval_reason`` says why: too short a calibration sample, bands that coincide)."""
        values = [float(v) for v in self.predict(horizon)]
        try:
            bounds = self.predict_interval(horizon, levels)
        except ValueError as exc:
            return {"values": values, "intervals": None, "interval_method": None, "interval_reason": str(exc)}
        intervals = {
            level_key(level): {"lower": [float(v) for v in lo], "upper": [float(v) for v in hi]}
            for level, (lo, hi) in bounds.items()
        }
        return {"values": values, "intervals": intervals, "interval_method": self.interval_method(),
                "interval_reason": None}

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
