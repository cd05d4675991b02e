"""The per-coin x per-model units of work of the evaluation, JSON in and JSON out.

Each unit takes only JSON-able arguments (a coin id, a model name, closes as a list of floats,
dates as ISO strings, numbers, lists and dicts of hyperparameters) and returns a JSON-able dict
(dates as ISO strings, NaN as ``None``), so that a worker elsewhere can run it from a message and
send the result back; the ``*_from_json`` functions rebuild the frames the local run gives:

- :func:`backtest_unit`: :func:`~crypto_ml.evaluation.backtest.backtest_series` of one model on one
  coin; :func:`backtest_from_json` gives the :class:`~crypto_ml.evaluation.backtest.BacktestResult`,
  and :meth:`BacktestResult.concat` joins the coins and models;
- :func:`forecast_unit`: :func:`~crypto_ml.evaluation.forecasts.forecast_days` of one model on one
  coin (the expensive part of the strategy backtest); :func:`forecasts_from_json` gives the frame
  that :func:`~crypto_ml.evaluation.simulation.simulate` replays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crypto_ml.evaluation.backtest import (
    FOLD_COLUMNS,
    FORECAST_COLUMNS,
    SKIPPED_COLUMNS,
    BacktestResult,
    backtest_series,
    interval_columns,
)
from crypto_ml.evaluation.forecasts import forecast_days
from crypto_ml.evaluation.metrics import METRICS
from crypto_ml.forecasting import DEFAULT_LEVELS

_FORECAST_DAY_COLUMNS = ["coin", "date", "last_close", "forecast", "expected_return", "train_end", "refit"]


def _plain(value: Any) -> Any:
    """A JSON value: Timestamps as ISO strings, numpy scalars as Python ones, NaN as None."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-able dicts."""
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def from_records(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, dates: Sequence[str] = (),
                 floats: Sequence[str] = ()) -> pd.DataFrame:
    """The inverse of :func:`to_records`: ``dates`` columns parsed, ``floats`` with None as NaN."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for col in dates:
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    for col in floats:
        frame[col] = frame[col].astype("float64")
    return frame


def backtest_unit(coin: str, model: str, closes: Sequence[float], dates: Sequence[str], *, period: int = 365,
                  folds: int = 12, horizon: int = 10, params: Mapping[str, Any] | None = None,
                  levels: Sequence[float] = DEFAULT_LEVELS) -> dict[str, Any]:
    """The walk-forward backtest of ``model`` on one coin, as JSON: ``{"params", "folds",
    "skipped", "forecasts"}`` (the frames as lists of rows)."""
    result = backtest_series(model, closes, dates, coin=coin, period=period, folds=folds, horizon=horizon,
                             params=params, levels=levels)
    return {"params": result.params, "folds": to_records(result.folds), "skipped": to_records(result.skipped),
            "forecasts": to_records(result.forecasts)}


def backtest_from_json(data: Mapping[str, Any]) -> BacktestResult:
    """The :class:`BacktestResult` of a :func:`backtest_unit` answer."""
    bounds = interval_columns(data["params"].get("levels") or [])
    out = BacktestResult(params=dict(data["params"]))
    if data["folds"]:
        out.folds = from_records(data["folds"], FOLD_COLUMNS, dates=("train_start", "train_end"),
                                 floats=METRICS)
        out.forecasts = from_records(data["forecasts"], FORECAST_COLUMNS + bounds, dates=("date",),
                                     floats=("last_close", "actual", "forecast", *bounds))
    if data["skipped"]:
        out.skipped = from_records(data["skipped"], SKIPPED_COLUMNS)
    return out


def forecast_unit(coin: str, model: str, closes: Sequence[float], dates: Sequence[str], *, start: str,
                  horizon: int = 10, levels: Sequence[float] = DEFAULT_LEVELS, refit_every: int = 7,
                  params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The point-in-time daily forecasts of ``model`` for one coin from ``start`` on, as JSON:
    ``{"levels", "forecasts"}`` (one row per day)."""
    frame = forecast_days(model, closes, dates, start=start, coin=coin, horizon=horizon, levels=levels,
                          refit_every=refit_every, params=params)
    return {"levels": [float(v) for v in levels], "forecasts": to_records(frame)}


def forecasts_from_json(data: Mapping[str, Any]) -> pd.DataFrame:
    """The :func:`forecast_days` frame of a :func:`forecast_unit` answer (empty: no columns)."""
    if not data["forecasts"]:
        return pd.DataFrame()
    bounds = interval_columns(data["levels"])
    return from_records(data["forecasts"], _FORECAST_DAY_COLUMNS + bounds, dates=("date", "train_end"),
                        floats=("last_close", "forecast", "expected_return", *bounds))
