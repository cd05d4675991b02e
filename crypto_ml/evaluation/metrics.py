"""Metrics of the evaluation: forecast accuracy, prediction intervals and trading.

Accuracy of one fold (:func:`score`):

- ``mae``, ``rmse``: in the coin's price units (do not average them across coins);
- ``mape``: mean absolute percentage error, in percent;
- ``mase``: MAE divided by the in-sample MAE of the one-step naive forecast on the training data
  (``mean |y_t - y_{t-1}|``), so 1.0 means "as wrong over the horizon as yesterday's close was
  for today, in training". Note that the naive *forecaster* scores above 1 at horizons > 1 day:
  compare models with each other (and with naive) rather than with 1;
- ``direction``: share of the horizon's days where the forecast moved the same way from the last
  known close as the actual price (both up, both down, or both flat).

Intervals: :func:`interval_score` (Winkler) and :func:`coverage_table`. Trading:
:func:`curve_metrics` of an equity curve and :func:`simulation_metrics` of a replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crypto_ml.forecasting import level_key

if TYPE_CHECKING:
    from crypto_ml.evaluation.simulation import Book

METRICS = ("mae", "rmse", "mape", "mase", "direction")
SUMMARY_COLUMNS = ["coin", "model", "n_folds", *METRICS]
COVERAGE_COLUMNS = [
    "model",
    "level",
    "n_coins",
    "n",
    "coverage",
    "mean_width_pct",
    "median_width_pct",
    "interval_score_pct",
    "miss_below",
    "miss_above",
]
#: Days per year for annualising (crypto trades every day).
PERIODS_PER_YEAR = 365


# -- accuracy -------------------------------------------------------------------------------------
def score(actual: Any, forecast: Any, last_close: float, train: Any) -> dict[str, float]:
    """The five metrics of one fold (see the module docstring)."""
    actual = np.asarray(actual, dtype="float64")
    forecast = np.asarray(forecast, dtype="float64")
    train = np.asarray(train, dtype="float64")
    err = forecast - actual
    mae = float(np.mean(np.abs(err)))
    scale = float(np.mean(np.abs(np.diff(train)))) if len(train) > 1 else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        mape = float(np.mean(np.abs(err) / np.abs(actual)) * 100.0)
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mape": mape if math.isfinite(mape) else float("nan"),
        "mase": mae / scale if scale > 0 else float("nan"),
        "direction": float(np.mean(np.sign(forecast - last_close) == np.sign(actual - last_close))),
    }


def summarize(folds: pd.DataFrame) -> pd.DataFrame:
    """Mean of the metrics over folds, one row per coin x model, with ``n_folds``."""
    if folds.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = folds.groupby(["coin", "model"], sort=False)
    out = grouped[list(METRICS)].mean()
    out.insert(0, "n_folds", grouped.size())
    return out.reset_index()[SUMMARY_COLUMNS]


def aggregate(summary: pd.DataFrame, baseline: str = "naive", *, common: bool = True) -> pd.DataFrame:
    """Per model over coins: mean of the per-coin metrics and the median MASE (see
    :meth:`crypto_ml.evaluation.backtest.BacktestResult.aggregate`)."""
    if summary.empty:
        return pd.DataFrame(columns=["model", "n_coins", *METRICS, "median_mase"])
    if common:
        n_models = summary["model"].nunique()
        counts = summary.groupby("coin")["model"].nunique()
        summary = summary[summary["coin"].isin(counts[counts == n_models].index)]
    grouped = summary.groupby("model", sort=False)
    out = grouped[list(METRICS)].mean()
    out.insert(0, "n_coins", grouped.size())
    out["median_mase"] = grouped["mase"].median()
    if baseline in out.index:
        out["beats_" + baseline], out["mase_vs_" + baseline] = _against(summary, list(out.index), baseline)
    return out.reset_index()


def _against(summary: pd.DataFrame, models: list[str], baseline: str) -> tuple[list[str], list[float]]:
    """Per model: on how many coins its MASE is below the baseline's, and the mean ratio."""
    pivot = summary.pivot(index="coin", columns="model", values="mase")
    beats, ratio = [], []
    for m in models:
        both = pivot[list(dict.fromkeys([m, baseline]))].dropna()
        mine, base = both[m], both[baseline]
        beats.append(f"{int((mine < base).sum())}/{len(both)}")
        ratio.append(float((mine / base).mean()) if len(both) else float("nan"))
    return beats, ratio


# -- prediction intervals -------------------------------------------------------------------------
def interval_score(lower: Any, upper: Any, actual: Any, level: float) -> np.ndarray:
    """Winkler interval score of each ``level`` % interval: its width plus ``2 / a`` times the
    distance by which the actual value falls outside (``a = 1 - level / 100``); lower is
    better, and a narrow band that misses often scores worse than an honest wide one."""
    lo, hi, y = (np.asarray(v, dtype="float64") for v in (lower, upper, actual))
    a = 1.0 - float(level) / 100.0
    return (hi - lo) + (2.0 / a) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))


def coverage_table(forecasts: pd.DataFrame, levels: Sequence[float], *, common: bool = False) -> pd.DataFrame:
    """Per model and level, over the forecast days with an interval (see
    :meth:`crypto_ml.evaluation.backtest.BacktestResult.coverage`)."""
    fc = forecasts
    rows = []
    if fc.empty or not levels:
        return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)
    if common:
        have = fc.dropna(subset=[f"lower_{level_key(levels[0])}"])
        counts = have.groupby("coin")["model"].nunique()
        fc = fc[fc["coin"].isin(counts[counts == fc["model"].nunique()].index)]
    for model, sub in fc.groupby("model", sort=False):
        for level in levels:
            key = level_key(level)
            part = sub.dropna(subset=[f"lower_{key}", f"upper_{key}"])
            if not part.empty:
                rows.append(_coverage_row(model, level, part, part[f"lower_{key}"], part[f"upper_{key}"]))
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


def _coverage_row(
    model: str, level: float, part: pd.DataFrame, lo: pd.Series, hi: pd.Series
) -> dict[str, Any]:
    actual = part["actual"]
    return {
        "model": model,
        "level": float(level),
        "n_coins": int(part["coin"].nunique()),
        "n": int(len(part)),
        "coverage": float(((actual >= lo) & (actual <= hi)).mean() * 100),
        "mean_width_pct": float(((hi - lo) / part["last_close"]).mean() * 100),
        "median_width_pct": float(((hi - lo) / part["last_close"]).median() * 100),
        "interval_score_pct": float(
            np.mean(interval_score(lo, hi, actual, level) / part["last_close"].to_numpy()) * 100
        ),
        "miss_below": float((actual < lo).mean() * 100),
        "miss_above": float((actual > hi).mean() * 100),
    }


# -- trading --------------------------------------------------------------------------------------
def curve_metrics(equity: pd.Series, capital: float) -> dict[str, float]:
    """Total return, annualised volatility, Sharpe and maximum drawdown of an equity curve that
    starts from ``capital`` (returns are daily, relative to the previous day's equity)."""
    values = np.concatenate([[capital], np.asarray(equity, dtype="float64")])
    daily = values[1:] / values[:-1] - 1.0
    std = float(np.std(daily, ddof=1)) if len(daily) > 1 else 0.0
    peak = np.maximum.accumulate(values)
    return {
        "total_return": float(values[-1] / capital - 1.0),
        "ann_volatility": std * math.sqrt(PERIODS_PER_YEAR),
        "sharpe": float(np.mean(daily) / std * math.sqrt(PERIODS_PER_YEAR)) if std > 1e-12 else float("nan"),
        "max_drawdown": float(np.max(1.0 - values / peak)),
    }


def simulation_metrics(sim: dict[str, Any], coin_capital: float) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics of one :func:`~crypto_ml.evaluation.simulation.simulate` run over all coins, and
    one row per coin (each coin's book measured against ``coin_capital``)."""
    books: dict[str, Book] = sim["books"]
    capital = sim["capital"]
    overall = curve_metrics(sim["equity"], capital)
    trips = sum(b.round_trips for b in books.values())
    overall.update(
        hit_rate=sum(b.wins for b in books.values()) / trips if trips else float("nan"),
        round_trips=trips,
        trades=sum(b.trades for b in books.values()),
        turnover=sum(b.traded for b in books.values()) / capital,
        fees=sum(b.fees for b in books.values()),
    )
    rows = []
    for coin, book in books.items():
        m = curve_metrics(coin_capital + sim["coin_pnl"][coin], coin_capital)
        m.update(
            coin=coin,
            hit_rate=book.wins / book.round_trips if book.round_trips else float("nan"),
            round_trips=book.round_trips,
            trades=book.trades,
            turnover=book.traded / coin_capital,
            fees=book.fees,
        )
        rows.append(m)
    return overall, pd.DataFrame(rows)
