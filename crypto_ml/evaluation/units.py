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
  that :func:`~crypto_ml.evaluation.simulation.simulate` replays;
- :func:`backtest_units` splits :func:`~crypto_ml.evaluation.backtest.run_backtest` into those
  units (its coins, windows and checks), and :func:`join_backtest` joins their answers into what
  ``run_backtest`` returns; a :class:`BacktestSpec` holds the arguments they share (the one value
  :func:`crypto_ml.engine.heavy.run_backtest_distributed` takes);
- :func:`strategy_units` splits the forecasting of a
  :class:`~crypto_ml.evaluation.strategy.StrategyPlan` into :func:`forecast_unit` units (model by
  model, coin by coin), and :func:`strategy_forecasts` gives back what
  :func:`~crypto_ml.evaluation.strategy.strategy_report` replays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crypto_ml.evaluation.backtest import (
    FOLD_COLUMNS,
    FORECAST_COLUMNS,
    SKIPPED_COLUMNS,
    BacktestResult,
    _coin_ids,
    _settings,
    _too_few_in_window,
    _windowed,
    _with_window,
    backtest_series,
    check_window,
    interval_columns,
)
from crypto_ml.evaluation.forecasts import forecast_days
from crypto_ml.evaluation.metrics import METRICS
from crypto_ml.forecasting import DEFAULT_LEVELS

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.evaluation.strategy import StrategyPlan

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


def from_records(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    dates: Sequence[str] = (),
    floats: Sequence[str] = (),
) -> pd.DataFrame:
    """The inverse of :func:`to_records`: ``dates`` columns parsed, ``floats`` with None as NaN."""
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for col in dates:
        frame[col] = pd.to_datetime(frame[col]).astype("datetime64[ns]")
    for col in floats:
        frame[col] = frame[col].astype("float64")
    return frame


def backtest_unit(
    coin: str,
    model: str,
    closes: Sequence[float],
    dates: Sequence[str],
    *,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    params: Mapping[str, Any] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> dict[str, Any]:
    """The walk-forward backtest of ``model`` on one coin, as JSON: ``{"params", "folds",
    "skipped", "forecasts"}`` (the frames as lists of rows)."""
    result = backtest_series(
        model,
        closes,
        dates,
        coin=coin,
        period=period,
        folds=folds,
        horizon=horizon,
        params=params,
        levels=levels,
    )
    return {
        "params": result.params,
        "folds": to_records(result.folds),
        "skipped": to_records(result.skipped),
        "forecasts": to_records(result.forecasts),
    }


def backtest_from_json(data: Mapping[str, Any]) -> BacktestResult:
    """The :class:`BacktestResult` of a :func:`backtest_unit` answer."""
    bounds = interval_columns(data["params"].get("levels") or [])
    out = BacktestResult(params=dict(data["params"]))
    if data["folds"]:
        out.folds = from_records(
            data["folds"], FOLD_COLUMNS, dates=("train_start", "train_end"), floats=METRICS
        )
        out.forecasts = from_records(
            data["forecasts"],
            FORECAST_COLUMNS + bounds,
            dates=("date",),
            floats=("last_close", "actual", "forecast", *bounds),
        )
    if data["skipped"]:
        out.skipped = from_records(data["skipped"], SKIPPED_COLUMNS)
    return out


def forecast_unit(
    coin: str,
    model: str,
    closes: Sequence[float],
    dates: Sequence[str],
    *,
    start: str,
    horizon: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    refit_every: int = 7,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The point-in-time daily forecasts of ``model`` for one coin from ``start`` on, as JSON:
    ``{"levels", "forecasts"}`` (one row per day)."""
    frame = forecast_days(
        model,
        closes,
        dates,
        start=start,
        coin=coin,
        horizon=horizon,
        levels=levels,
        refit_every=refit_every,
        params=params,
    )
    return {"levels": [float(v) for v in levels], "forecasts": to_records(frame)}


def forecasts_from_json(data: Mapping[str, Any]) -> pd.DataFrame:
    """The :func:`forecast_days` frame of a :func:`forecast_unit` answer (empty: no columns)."""
    if not data["forecasts"]:
        return pd.DataFrame()
    bounds = interval_columns(data["levels"])
    return from_records(
        data["forecasts"],
        _FORECAST_DAY_COLUMNS + bounds,
        dates=("date", "train_end"),
        floats=("last_close", "forecast", "expected_return", *bounds),
    )


@dataclass(frozen=True)
class BacktestSpec:
    """What a walk-forward backtest runs, the keyword arguments of
    :func:`~crypto_ml.evaluation.backtest.run_backtest` and :func:`backtest_units` but the loader
    and the progress bar: the coins (None: every coin of the loader), the models by name, the test
    window (``period`` days up to ``end``, or ``start`` .. ``end``), folds, horizon, per-model
    hyperparameters and interval levels. Checked where it is run (as ``run_backtest`` checks)."""

    coins: Sequence[str] | None = None
    models: Sequence[str] = ("naive", "linear")
    period: int = 365
    folds: int = 12
    horizon: int = 10
    params: Mapping[str, Mapping[str, Any]] | None = None
    levels: Sequence[float] = DEFAULT_LEVELS
    start: Any = None
    end: Any = None

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``run_backtest`` / :func:`backtest_units`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def units(self, loader: CryptoLoader | None = None) -> list[dict[str, Any] | BacktestResult]:
        """:func:`backtest_units` of this spec on ``loader``'s data."""
        return backtest_units(loader=loader, **self.arguments())

    def join(self, parts: Sequence[BacktestResult]) -> BacktestResult:
        """:func:`join_backtest` of the units' results, in this spec's window."""
        return join_backtest(parts, start=self.start, end=self.end)


def backtest_units(
    coins: Sequence[str] | None = None,
    models: Sequence[str] = ("naive", "linear"),
    *,
    loader: CryptoLoader | None = None,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    start: Any = None,
    end: Any = None,
) -> list[dict[str, Any] | BacktestResult]:
    """:func:`~crypto_ml.evaluation.backtest.run_backtest` (same arguments; models by name) as units
    of work, in its order (coin by coin, model by model): for each coin and model the keyword
    arguments of :func:`backtest_unit` (JSON: the coin's closes up to ``end`` and their dates as
    ISO strings), or, for a coin with fewer closes in the window than ``folds``, the final
    :class:`BacktestResult` that reports it skipped. The settings are checked here, as
    ``run_backtest`` checks them."""
    first_day, last_day = check_window(start, end, period=period, folds=folds)
    named = [m for m in models if not isinstance(m, str)]
    if named:
        raise ValueError(f"units name their models (a registry name); got {named!r}")
    loader, coin_ids = _coin_ids(loader, coins)
    params = dict(params or {})
    settings = {"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)}
    units: list[dict[str, Any] | BacktestResult] = []
    for coin in coin_ids:
        closes, dates, coin_period = _windowed(*loader.get_prices(coin), first_day, last_day, period)
        closes_json = [float(v) for v in closes]
        dates_json = [d.isoformat() for d in pd.DatetimeIndex(dates)]
        for model in models:
            if coin_period < folds:
                units.append(_too_few_in_window(coin, model, coin_period, settings, first_day, last_day))
                continue
            checked = _settings(coin_period, folds, horizon, levels)
            model_params = params.get(str(model))
            units.append(
                {
                    "coin": coin,
                    "model": str(model),
                    "closes": closes_json,
                    "dates": dates_json,
                    "period": coin_period,
                    "folds": folds,
                    "horizon": checked["horizon"],
                    "params": None if model_params is None else dict(model_params),
                    "levels": [float(v) for v in checked["levels"]],
                }
            )
    return units


def join_backtest(parts: Sequence[BacktestResult], *, start: Any = None, end: Any = None) -> BacktestResult:
    """The :class:`BacktestResult` of :func:`~crypto_ml.evaluation.backtest.run_backtest` from the
    results of its units (in the order of :func:`backtest_units`) and its window."""
    first_day, last_day = check_window(start, end)
    return _with_window(BacktestResult.concat(parts), first_day, last_day)


def strategy_units(plan: StrategyPlan) -> list[dict[str, Any]]:
    """The keyword arguments of :func:`forecast_unit` for every model and coin of ``plan`` (model by
    model, coin by coin, the order of the in-process run): the coin's closes up to the window's
    end, their dates and the start as ISO strings."""
    series = {}
    for coin in plan.coins:
        closes, dates = plan.checked[coin]
        series[coin] = ([float(v) for v in closes], [d.isoformat() for d in pd.DatetimeIndex(dates)])
    units = []
    for model in plan.models:
        settings = plan.forecast_settings(model)
        for coin in plan.coins:
            units.append(
                {
                    "coin": coin,
                    "model": model,
                    "closes": series[coin][0],
                    "dates": series[coin][1],
                    "start": pd.Timestamp(settings["start"]).isoformat(),
                    "horizon": settings["horizon"],
                    "levels": [float(v) for v in settings["levels"]],
                    "refit_every": settings["refit_every"],
                    "params": None if settings["params"] is None else dict(settings["params"]),
                }
            )
    return units


def strategy_forecasts(
    plan: StrategyPlan, answers: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, dict[str, pd.DataFrame]], dict[str, float]]:
    """``{model: {coin: frame}}`` from the answers of :func:`strategy_units` (in its order), and the
    seconds per model the units took where they ran (``forecasts <model>``)."""
    if len(answers) != len(plan.models) * len(plan.coins):
        raise ValueError(f"{len(answers)} answers for {len(plan.models)} models x {len(plan.coins)} coins")
    done = iter(answers)
    forecasts: dict[str, dict[str, pd.DataFrame]] = {}
    timings: dict[str, float] = {}
    for model in plan.models:
        forecasts[model] = {}
        timings[f"forecasts {model}"] = 0.0
        for coin in plan.coins:
            answer = next(done)
            forecasts[model][coin] = forecasts_from_json(answer)
            timings[f"forecasts {model}"] += float(answer.get("ran", {}).get("seconds", 0.0))
    return forecasts, timings
