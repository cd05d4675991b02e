"""Point-in-time forecasts for the strategy backtest: one per day, from the closes up to that day.

:func:`forecast_days` is the unit of work of the strategy backtest (one coin, one model): for each
day from ``start`` on, the model forecasts from the closes **up to that day only**, refitted every
``refit_every`` days on the closes up to the refit day and moved to each later day with
``update``, exactly as a weekly trained version serves the daily runs; the conformal intervals are
calibrated inside the same training window (on the ``horizon`` steps the rule looks at).
:func:`prediction_of` turns one of its rows into the prediction the DAG's ``decide`` task sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crypto_ml.forecasting import DEFAULT_LEVELS, BaseForecaster, check_horizon, check_levels, level_key


def check_series(coin: str, closes: Any, dates: Any) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Closes as float64 and dates as a DatetimeIndex, or a ``ValueError`` naming the coin, the
    row (position and date) and what is wrong."""
    y = np.asarray(closes, dtype="float64")
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    if y.ndim != 1 or len(y) != len(idx):
        raise ValueError(f"coin {coin!r}: {len(y)} closes but {len(idx)} dates")
    for i, (value, day) in enumerate(zip(y, idx)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"coin {coin!r}: row {i} ({day.date()}): close {float(value)!r} is not a finite price > 0"
            )
    if len(idx) > 1:
        step = np.diff(idx.asi8)
        bad = np.flatnonzero(step <= 0)
        if len(bad):
            i = int(bad[0]) + 1
            raise ValueError(
                f"coin {coin!r}: row {i} ({idx[i].date()}): dates must increase, "
                f"previous row is {idx[i - 1].date()}"
            )
    return y, idx


def forecast_days(
    model: str,
    closes: Any,
    dates: Any,
    *,
    start: Any,
    coin: str = "series",
    horizon: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    refit_every: int = 7,
    params: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per day from ``start`` on: the forecast made with the closes up to that day only.

    Columns: ``coin, date, last_close, forecast`` (close ``horizon`` days ahead),
    ``expected_return``, ``lower_<level>`` / ``upper_<level>`` (that close's interval, NaN when the
    window was too short to calibrate), ``train_end`` (last day the parameters saw) and ``refit``.
    Days before the model has enough history are left out.
    """
    from crypto_ml.forecasting.registry import make_forecaster

    horizon = check_horizon(horizon)
    levels = check_levels(levels)
    if isinstance(refit_every, bool) or not isinstance(refit_every, int) or refit_every < 1:
        raise ValueError(f"refit_every must be a positive int (days), got {refit_every!r}")
    y, idx = check_series(coin, closes, dates)
    first = int(idx.searchsorted(pd.Timestamp(start)))
    # only the steps the rule looks at are calibrated
    template = make_forecaster(model, **dict(params or {})).set_params(calibration_steps=horizon)
    rows: list[dict[str, Any]] = []
    fitted, train_end, since_fit = None, None, 0
    for i in range(max(first, max(template.min_points(), 2) - 1), len(y)):
        history = y[: i + 1]  # point in time: nothing after day i
        refit = fitted is None or since_fit >= refit_every
        try:
            if refit:
                fitted = clone(template).fit(history)
                train_end, since_fit = idx[i], 0
            else:
                fitted.update(history)
            point = fitted.predict(horizon)
        except ValueError:
            fitted = None  # degenerate window (e.g. constant prices for AR): no forecast today
            continue
        since_fit += 1
        rows.append(_day_row(fitted, coin, idx[i], float(y[i]), point, horizon, levels, train_end, refit))
    return pd.DataFrame(rows)


def _day_row(
    fitted: BaseForecaster,
    coin: str,
    day: pd.Timestamp,
    close: float,
    point: np.ndarray,
    horizon: int,
    levels: Sequence[float],
    train_end: Any,
    refit: bool,
) -> dict[str, Any]:
    """One day's row of :func:`forecast_days`: the forecast ``horizon`` days ahead and its bounds."""
    row = {
        "coin": coin,
        "date": day,
        "last_close": close,
        "forecast": float(point[-1]),
        "expected_return": float(point[-1] / close - 1.0),
        "train_end": train_end,
        "refit": refit,
    }
    try:
        bounds = fitted.predict_interval(horizon, levels)
    except ValueError:
        bounds = {}
    for level in levels:
        lo, hi = bounds.get(level, (None, None))
        row[f"lower_{level_key(level)}"] = float(lo[-1]) if lo is not None else float("nan")
        row[f"upper_{level_key(level)}"] = float(hi[-1]) if hi is not None else float("nan")
    return row


def prediction_of(row: Any, keys: Sequence[str], model: str, horizon: int) -> dict[str, Any]:
    """The prediction dict the DAG's decide sees (horizon-end bounds only) from a row of
    :func:`forecast_days` (a named tuple) and its interval keys (``"80"``, ``"95"``)."""
    intervals = {}
    for key in keys:
        lo, hi = getattr(row, f"lower_{key}"), getattr(row, f"upper_{key}")
        if math.isfinite(lo) and math.isfinite(hi):
            intervals[key] = {"lower": [lo], "upper": [hi]}
    return {
        "coin": row.coin,
        "as_of": row.date.date().isoformat(),
        "model": model,
        "version": 0,
        "horizon": horizon,
        "last_close": row.last_close,
        "expected_return": row.expected_return,
        "intervals": intervals or None,
    }
