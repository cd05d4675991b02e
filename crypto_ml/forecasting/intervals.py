"""Conformal prediction intervals of the forecasters.

:class:`IntervalMixin` gives :class:`~crypto_ml.forecasting.base.BaseForecaster` its
:meth:`~IntervalMixin.predict_interval`: lower and upper bounds of the path for any levels (default
80 % and 95 %), model-native when a model implements ``_predict_native_interval`` (none of the
shipped models has a native one), otherwise **conformal**, calibrated at ``fit`` on walk-forward
residuals of the training window only (:meth:`~IntervalMixin._calibrate`), so an interval never
uses data after the last fitted close. By default the residuals are return errors divided by the
EWMA volatility at their origin (normalised conformal), with separate lower and upper quantiles (a
band need not be symmetric), and the quantile level is adapted along the walk (adaptive conformal inference).

The settings are constructor parameters of every forecaster (so ``get_params``, ``set_params`` and
``clone`` see them):

- ``calibration_origins`` (180), ``calibration_steps`` (30): walk-forward origins (the last days of
  the training window) and the steps ahead whose residuals are kept; beyond the last step the
  bounds widen by ``sqrt(h / steps)``;
- ``interval_vol_window`` (0: off): normalised conformal, residuals divided by the volatility of
  that many daily log returns up to their origin and bounds multiplied by the volatility up to the
  last close (``interval_vol_``), so intervals widen and narrow with the market's regime;
- ``interval_vol_ewm`` (0.94; None: off): the same with an exponentially weighted volatility
  (RiskMetrics decay); takes precedence over ``interval_vol_window``;
- ``interval_aci_gamma`` (0.005; None: off): adaptive conformal inference (:func:`aci_level`), the
  step size of the level's update along the calibration walk. 0.005 with the EWMA normalisation was
  chosen among plain, normalised, log-error, per-side and adaptive variants on the bundled data's two
  years before the last, as the best interval (Winkler) score among those within 3 points of nominal
  coverage with misses balanced within 3 points (``benchmarks/bench_intervals.py``,
  ``benchmarks/results/intervals.md``);
- ``interval_half_life`` (None: off): recent calibration residuals weigh more, the weight halving
  every ``interval_half_life`` origins (otherwise plain split-conformal);
- ``interval_aci_sides`` (False: off): adaptive conformal inference moves the lower and the upper
  tail apart (:func:`aci_side_levels`), so misses on one side widen that side only;
- ``interval_log`` (False: off): the residuals are log errors ``log(actual / forecast)`` instead of
  return errors ``(actual - forecast) / last close``, and the bounds ``forecast * exp(q * vol)``:
  the lower and upper conformal quantiles of log errors, so a band is asymmetric in price (further
  up than down) and its lower bound is always above 0.

Plausible bounds (the one place that says so): no upper bound is above :data:`MAX_BOUND_RATIO` times
the last close; a wider quantile is capped there (a +72,316 % bound from a few wild residuals says
nothing a +900 % one does not). Below :data:`MIN_CALIBRATION` one-step residuals a forecast has no
interval, and :meth:`IntervalMixin.predict_with_intervals` says why in ``interval_reason``.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from crypto_ml.forecasting.checks import check_horizon, check_levels

#: Interval levels (percent) given when none are asked for.
DEFAULT_LEVELS: tuple[int, ...] = (80, 95)
#: Fewest one-step calibration residuals for conformal intervals (fewer: no intervals). With
#: fewer than 39 the 95 % bounds are just the extreme residuals (the conformal rank falls outside
#: the sample); with 10, a young coin's ten up days made a "95 % interval" entirely above +2 %.
MIN_CALIBRATION = 40
#: The highest upper bound of any interval, as a multiple of the last close (10: +900 %).
MAX_BOUND_RATIO = 10.0
#: Returns before an exponentially weighted volatility counts (fewer: NaN).
EWM_MIN_RETURNS = 20
#: Known residuals before adaptive conformal inference starts updating its level.
ACI_BURN_IN = 20
#: The interval settings every forecaster takes as keyword parameters, with their defaults.
INTERVAL_DEFAULTS: dict[str, Any] = {
    "calibration_origins": 180,
    "calibration_steps": 30,
    "interval_vol_window": 0,
    "interval_vol_ewm": 0.94,
    "interval_aci_gamma": 0.005,
    "interval_half_life": None,
    "interval_log": False,
    "interval_aci_sides": False,
}


def level_key(level: float) -> str:
    """JSON key of a level: ``80`` -> ``"80"``, ``97.5`` -> ``"97.5"``."""
    return f"{float(level):g}"


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
    return _aci_walk(residuals, level, gamma, step, burn_in, sides=False)[0]


def aci_side_levels(
    residuals: Any, level: float, gamma: float, step: int, burn_in: int = ACI_BURN_IN
) -> tuple[float, float]:
    """:func:`aci_level` for each side apart: ``(lower, upper)`` levels in percent, each the
    symmetric level whose tail on that side is the one to read (the lower bound is
    :func:`conformal_bounds`' lower one at the first level, the upper one its upper at the second).
    Each tail ``b`` starts at ``alpha / 2`` and moves by ``b <- b + gamma * (alpha / 2 - miss)``,
    a miss being a residual below the lower (above the upper) bound: when the recent errors miss
    on one side only, that side widens and the other narrows, so the misses are pulled to
    ``alpha / 2`` on both sides."""
    lower, upper = _aci_walk(residuals, level, gamma, step, burn_in, sides=True)
    return lower, upper


def _aci_walk(
    residuals: Any, level: float, gamma: float, step: int, burn_in: int, *, sides: bool
) -> tuple[float, float]:
    """The adaptive conformal walk of :func:`aci_level` (``sides`` False: one level, returned
    twice) and :func:`aci_side_levels` (``sides`` True: one tail per side)."""
    r = [float(v) for v in residuals]
    alpha = 1.0 - float(level) / 100.0
    tails = [alpha / 2.0, alpha / 2.0]  # lower, upper tail probabilities
    known: list[float] = []
    nxt = 0
    for j, value in enumerate(r):
        while nxt <= j - step:
            bisect.insort(known, r[nxt])
            nxt += 1
        n = len(known)
        if n < burn_in:
            continue
        lo_tail, hi_tail = (min(max(t, 0.0), 0.5) for t in tails)
        lo = int(np.floor((n + 1) * lo_tail))
        hi = int(np.ceil((n + 1) * (1.0 - hi_tail)))
        lower = known[min(max(lo, 1), n) - 1]
        upper = known[min(max(hi, 1), n) - 1]
        below, above = float(value < lower), float(value > upper)
        if sides:
            tails[0] += gamma * (alpha / 2.0 - below)
            tails[1] += gamma * (alpha / 2.0 - above)
        else:
            move = gamma * (alpha - below - above) / 2.0
            tails = [tails[0] + move, tails[1] + move]
    out = [float(min(max(100.0 * (1.0 - 2.0 * t), 1e-6), 100.0 - 1e-6)) for t in tails]
    return out[0], out[1]


def conformal_bounds(
    residuals: np.ndarray, level: float, half_life: float | None = None
) -> tuple[float, float]:
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


class IntervalMixin:
    """Conformal prediction intervals for a forecaster (see the module docstring): calibrated by
    :meth:`_calibrate` at ``fit``, served by :meth:`predict_interval`. Needs the forecaster's
    ``min_points``, ``_update_points``, ``_fit_point``, ``update`` and ``predict`` and the interval
    settings as attributes."""

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
            self.interval_reason_ = (
                f"fitted on {n} closes, calibrating them needs at least {self.min_calibration_points()}"
            )
            return None
        cal = clone(self)
        try:
            cal._fit_point(y[: t0 + 1])
            return origins, cal._calibration_paths(y, origins, int(self.calibration_steps))
        except (ValueError, FloatingPointError) as exc:
            self.interval_reason_ = (
                f"the calibration copy could not be fitted on the first {t0 + 1} closes ({exc})"
            )
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
        log = bool(self.interval_log)
        self.interval_log_ = log
        for scaled in (True, False) if normalised else (False,):
            out: list[list[float]] = [[] for _ in range(steps)]
            for j, t in enumerate(origins):
                base = y[t]
                scale = vols[t] if scaled else 1.0
                if not base > 0 or not scale > 0:
                    continue
                for h in range(1, min(steps, n - 1 - t) + 1):
                    value = paths[j, h - 1]
                    if log and value > 0 and y[t + h] > 0:
                        out[h - 1].append(float(np.log(y[t + h] / value) / scale))
                    elif not log and np.isfinite(value):
                        out[h - 1].append(float((y[t + h] - value) / base / scale))
            if len(out[0]) >= MIN_CALIBRATION:  # else: too short to normalise, try plain
                self.interval_vol_ = float(vols[-1]) if scaled else None
                return [r for r in out if r]
        self.interval_vol_ = None
        self.interval_reason_ = (
            f"{len(out[0])} usable one-step calibration residuals of {len(origins)} origins, fewer than "
            f"{MIN_CALIBRATION}" + (" (log errors need positive forecasts and closes)" if log else "")
        )
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
        if type(self)._predict_native_interval is not IntervalMixin._predict_native_interval:
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
            why = getattr(self, "interval_reason_", None) or (
                f"fitted on {getattr(self, 'n_fit_', '?')} closes, calibrating them needs at least "
                f"{self.min_calibration_points()} (or the model was saved before intervals existed)"
            )
            raise ValueError(f"{type(self).__name__} has no prediction intervals: {why}")
        out = self._conformal_bands(horizon, sorted(levels))
        self._check_bands_apart(out)
        return {level: out[level] for level in levels}

    def _conformal_bands(
        self, horizon: int, order: list[float]
    ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """``{level: (lower, upper)}`` for the ascending levels ``order``: :meth:`predict`'s path
        plus the scaled conformal quantiles of each step, both bounds clipped at 0."""
        point = self.predict(horizon)
        residuals = self.interval_residuals_
        steps = len(residuals)
        lower = {level: np.empty(horizon) for level in order}
        upper = {level: np.empty(horizon) for level in order}
        vol = getattr(self, "interval_vol_", None)
        log = bool(getattr(self, "interval_log_", False))  # None: saved before log errors existed
        if log and not np.all(point > 0):
            raise ValueError(
                f"{type(self).__name__} has no prediction intervals: its intervals are calibrated on log "
                f"errors and the forecast path is not positive (min {float(np.min(point)):g})"
            )
        for h in range(1, horizon + 1):
            k = min(h, steps)
            read_lo, read_hi = self._read_side_levels(order, k)
            scale = np.sqrt(h / k) if h > k else 1.0
            if vol is not None:
                scale *= vol
            for level in order:
                lo = conformal_bounds(residuals[k - 1], read_lo[level], self.interval_half_life)[0]
                hi = conformal_bounds(residuals[k - 1], read_hi[level], self.interval_half_life)[1]
                if log:
                    lower[level][h - 1] = point[h - 1] * np.exp(lo * scale)
                    upper[level][h - 1] = point[h - 1] * np.exp(hi * scale)
                else:
                    lower[level][h - 1] = point[h - 1] + lo * scale * self.last_value_
                    upper[level][h - 1] = point[h - 1] + hi * scale * self.last_value_
        return {level: self._plausible(lower[level], upper[level]) for level in order}

    def _plausible(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds within what a close can be: at least 0 and at most :data:`MAX_BOUND_RATIO` times
        the last close, both bounds clipped alike (clipping only one would order them wrongly
        when the whole band lies outside)."""
        ceiling = MAX_BOUND_RATIO * self.last_value_
        return np.clip(lower, 0.0, ceiling), np.clip(upper, 0.0, ceiling)

    def _check_bands_apart(self, out: dict[float, tuple[np.ndarray, np.ndarray]]) -> None:
        """A ``ValueError`` when two levels' bands (ascending keys of ``out``) coincide at a step."""
        order = list(out)
        for inner, outer in zip(order, order[1:]):
            (lo_i, hi_i), (lo_o, hi_o) = out[inner], out[outer]
            # A band wholly below zero is clipped to [0, 0] at both levels (a close's floor; see the
            # clipping above): that step says "at most 0" for both, not two coinciding bands.
            same = np.flatnonzero((lo_o >= lo_i) & (hi_o <= hi_i) & (hi_o > 0))
            if len(same):
                step = int(same[0])
                ceiling = MAX_BOUND_RATIO * self.last_value_
                clipped = lo_o[step] == 0 and hi_o[step] == ceiling
                why = (
                    f"both clipped to the price floor 0 and the cap of {MAX_BOUND_RATIO:g}x the last "
                    "close: the calibration errors are far larger than the price"
                    if clipped
                    else "tied calibration residuals"
                )
                raise ValueError(
                    f"{type(self).__name__} has no prediction intervals: the {outer:g} % and {inner:g} % "
                    f"bands coincide at step {step + 1} ({why}), so neither says how uncertain the "
                    "forecast is"
                )

    def _read_side_levels(
        self, order: list[float], step: int
    ) -> tuple[dict[float, float], dict[float, float]]:
        """The levels each of ``order`` is read at for step ``step``, for the lower and the upper
        bound (:meth:`_adapted_level`; the same for both sides unless ``interval_aci_sides``),
        each side kept inside the sample and apart by :meth:`_read_levels`."""
        adapted = {level: self._adapted_level(level, step) for level in order}
        lower = self._read_levels(order, step, {lv: a[0] for lv, a in adapted.items()})
        upper = self._read_levels(order, step, {lv: a[1] for lv, a in adapted.items()})
        return lower, upper

    def _read_levels(
        self, order: list[float], step: int, adapted: dict[float, float] | None = None
    ) -> dict[float, float]:
        """The level each of ``order`` (ascending nominal levels) is read at for step ``step``:
        ``adapted`` (default: :meth:`_adapted_level`, one level for both sides), kept inside the
        calibration sample and apart. With ``n`` residuals
        a level above ``100 (1 - 2 / (n + 1))`` would read past the sample's extremes, so it is
        read there; and each level is read at least ``200 / (n + 1)`` points below the next
        higher one, which moves both conformal ranks by one or more, so the bands of two levels
        never coincide (adaptive conformal inference can push an 80 % and a 95 % level both to
        the sample's extremes)."""
        n = len(self.interval_residuals_[step - 1])
        gap = 200.0 / (n + 1) * 1.001  # a little over one rank, so float rounding cannot merge two ranks
        if adapted is None:
            adapted = {level: self._adapted_level(level, step)[0] for level in order}
        read = dict(adapted)
        ceiling = 100.0 * (1.0 - 2.0 / (n + 1))
        for level in reversed(order):
            read[level] = min(read[level], ceiling)
            ceiling = read[level] - gap
        low = order[0]
        if read[low] <= 0:
            raise ValueError(
                f"{type(self).__name__} has no prediction intervals: {n} calibration residuals at step "
                f"{step} cannot tell the {', '.join(f'{v:g}' for v in order)} % levels apart"
            )
        return read

    def _adapted_level(self, level: float, step: int) -> tuple[float, float]:
        """The levels to read step ``step``'s lower and upper quantiles at: ``level`` itself, or
        with ``interval_aci_gamma`` the adaptive conformal level at the end of the calibration walk
        (:func:`aci_level`, the same for both sides; :func:`aci_side_levels` with
        ``interval_aci_sides``), cached per fit: the residuals do not change with :meth:`update`."""
        gamma = self.interval_aci_gamma
        if not gamma:
            return float(level), float(level)
        residuals = self.interval_residuals_
        cache = getattr(self, "_aci_cache", None)
        if cache is None or cache[0] is not residuals:
            cache = (residuals, {})
            self._aci_cache = cache
        sides = bool(getattr(self, "interval_aci_sides", False))
        key = (float(level), int(step), float(gamma), sides)
        if key not in cache[1]:
            if sides:
                cache[1][key] = aci_side_levels(residuals[step - 1], level, float(gamma), step)
            else:
                one = aci_level(residuals[step - 1], level, float(gamma), step)
                cache[1][key] = (one, one)
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
        return {
            "values": values,
            "intervals": intervals,
            "interval_method": self.interval_method(),
            "interval_reason": None,
        }
