"""Walk-forward backtests with an expanding window.

For one coin's closes, the test period (the last ``period`` days) is split into ``folds`` equal
blocks. At the start of each block the forecaster is fitted on **all** closes before it and
forecasts ``horizon`` days, which are scored against what happened:

- ``mae``, ``rmse``: in the coin's price units (do not average them across coins);
- ``mape``: mean absolute percentage error, in percent;
- ``mase``: MAE divided by the in-sample MAE of the one-step naive forecast on the training data
  (``mean |y_t - y_{t-1}|``), so 1.0 means "as wrong over the horizon as yesterday's close was
  for today, in training". Note that the naive *forecaster* scores above 1 at horizons > 1 day:
  compare models with each other (and with naive) rather than with 1;
- ``direction``: share of the horizon's days where the forecast moved the same way from the last
  known close as the actual price (both up, both down, or both flat).

Each fold also records the forecast's prediction intervals (``levels``, default 80 % and 95 %,
calibrated inside the fold's training window only); :meth:`BacktestResult.coverage` gives per model
and level the share of actual closes inside their interval and the mean interval width (in percent
of the last close), which should sit near the nominal level.

A coin shorter than ``period`` plus the model's minimum training length is reported in
``skipped`` with the reason; so is a fold whose fit fails on degenerate data. Nothing is dropped
silently.

>>> from crypto_ml.backtest import run_backtest
>>> result = run_backtest(["bitcoin", "ethereum"], ["naive", "linear"], folds=6)
>>> result.summary          # one row per coin x model; result.folds has one row per fold
>>> print(format_report(result))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone

from crypto_ml.forecasting import DEFAULT_LEVELS, BaseForecaster, check_horizon, check_levels, make_forecaster
from crypto_ml.forecasting.base import level_key

if TYPE_CHECKING:
    from crypto_ml.data_loader import CryptoLoader
    from crypto_ml.model_store import ModelStore

METRICS = ("mae", "rmse", "mape", "mase", "direction")
FOLD_COLUMNS = ["coin", "model", "fold", "train_start", "train_end", "n_train", "horizon", *METRICS]
SUMMARY_COLUMNS = ["coin", "model", "n_folds", *METRICS]
SKIPPED_COLUMNS = ["coin", "model", "fold", "reason"]
FORECAST_COLUMNS = ["coin", "model", "fold", "step", "date", "last_close", "actual", "forecast"]
COVERAGE_COLUMNS = [
    "model", "level", "n_coins", "n", "coverage", "mean_width_pct", "median_width_pct", "interval_score_pct",
    "miss_below", "miss_above",
]


def interval_score(lower: Any, upper: Any, actual: Any, level: float) -> np.ndarray:
    """Winkler interval score of each ``level`` % interval: its width plus ``2 / a`` times the
    distance by which the actual value falls outside (``a = 1 - level / 100``); lower is
    better, and a narrow band that misses often scores worse than an honest wide one."""
    lo, hi, y = (np.asarray(v, dtype="float64") for v in (lower, upper, actual))
    a = 1.0 - float(level) / 100.0
    return (hi - lo) + (2.0 / a) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))


def interval_columns(levels: Sequence[float]) -> list[str]:
    """``lower_80, upper_80, lower_95, upper_95`` for levels (80, 95)."""
    return [f"{side}_{level_key(v)}" for v in levels for side in ("lower", "upper")]


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


def fold_starts(n: int, period: int, folds: int) -> list[int]:
    """Index of the first forecast day of each fold: ``folds`` equal blocks of the last ``period``
    of ``n`` days."""
    first = n - period
    return [first + (i * period) // folds for i in range(folds)]


@dataclass
class BacktestResult:
    """Tidy frames: ``folds`` (one row per fold), ``summary`` (mean over folds per coin x model),
    ``skipped`` (coin, model, fold or ``None``, reason) and ``forecasts`` (one row per forecast
    day, for plots)."""

    folds: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FOLD_COLUMNS))
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    forecasts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FORECAST_COLUMNS))
    params: dict = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        if self.folds.empty:
            return pd.DataFrame(columns=SUMMARY_COLUMNS)
        grouped = self.folds.groupby(["coin", "model"], sort=False)
        out = grouped[list(METRICS)].mean()
        out.insert(0, "n_folds", grouped.size())
        return out.reset_index()[SUMMARY_COLUMNS]

    def aggregate(self, baseline: str = "naive", *, common: bool = True) -> pd.DataFrame:
        """Per model over coins: mean of the per-coin metrics and the median MASE.

        :param common: like-for-like: only the coins on which *every* model ran (a model with a
            longer minimum history, like the LSTM, is otherwise averaged over fewer coins).
        :param baseline: when it was run, add ``beats_<baseline>`` (on how many coins the model's
            MASE is below the baseline's) and ``mase_vs_<baseline>`` (mean over those paired coins
            of MASE / baseline MASE; below 1 means better than the baseline).
        """
        summary = self.summary
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
        models = list(out.index)
        if baseline in models:
            pivot = summary.pivot(index="coin", columns="model", values="mase")
            beats, ratio = [], []
            for m in models:
                both = pivot[list(dict.fromkeys([m, baseline]))].dropna()
                mine, base = both[m], both[baseline]
                beats.append(f"{int((mine < base).sum())}/{len(both)}")
                ratio.append(float((mine / base).mean()) if len(both) else float("nan"))
            out["beats_" + baseline] = beats
            out["mase_vs_" + baseline] = ratio
        return out.reset_index()

    def coverage(self, *, common: bool = False) -> pd.DataFrame:
        """Per model and level over every forecast day with an interval: ``coverage`` (share of
        actual closes inside), ``mean_width_pct`` / ``median_width_pct`` (of (upper - lower) / last close,
        percent; the mean is dominated by the wildest coins), ``interval_score_pct`` (mean
        Winkler score, :func:`interval_score`, over the last close, percent),
        ``miss_below`` / ``miss_above`` (shares below the lower / above the upper bound).

        :param common: only the coins on which every model produced intervals.
        """
        fc = self.forecasts
        levels = self.params.get("levels") or []
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
                if part.empty:
                    continue
                lo, hi, actual = part[f"lower_{key}"], part[f"upper_{key}"], part["actual"]
                rows.append({
                    "model": model, "level": float(level), "n_coins": int(part["coin"].nunique()),
                    "n": int(len(part)),
                    "coverage": float(((actual >= lo) & (actual <= hi)).mean() * 100),
                    "mean_width_pct": float(((hi - lo) / part["last_close"]).mean() * 100),
                    "median_width_pct": float(((hi - lo) / part["last_close"]).median() * 100),
                    "interval_score_pct": float(np.mean(interval_score(lo, hi, actual, level)
                                                        / part["last_close"].to_numpy()) * 100),
                    "miss_below": float((actual < lo).mean() * 100),
                    "miss_above": float((actual > hi).mean() * 100),
                })
        return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)

    @classmethod
    def concat(cls, parts: Iterable["BacktestResult"]) -> "BacktestResult":
        parts = list(parts)
        out = cls()
        for name in ("folds", "skipped", "forecasts"):
            frames = [getattr(p, name) for p in parts if not getattr(p, name).empty]
            if frames:
                setattr(out, name, pd.concat(frames, ignore_index=True))
        if parts:
            out.params = dict(parts[0].params)
        return out


def _as_forecaster(model: str | BaseForecaster, params: Mapping[str, Any] | None) -> tuple[str, BaseForecaster]:
    if isinstance(model, BaseForecaster):
        return model.name, model
    return str(model), make_forecaster(str(model), **dict(params or {}))


def backtest_series(
    model: str | BaseForecaster,
    closes: Any,
    dates: Any = None,
    *,
    coin: str = "series",
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    params: Mapping[str, Any] | None = None,
    store: "ModelStore | None" = None,
    progress: Any = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> BacktestResult:
    """Walk-forward backtest of one model on one series of closes (oldest first).

    :param model: a registry name (with ``params``) or an unfitted forecaster (cloned per fold).
    :param dates: dates of the closes (default: day numbers).
    :param store: save each fold's fitted model there (train window, metrics).
    :param progress: a tqdm bar to advance once per fold (skipped folds included).
    :param levels: prediction-interval levels (percent) recorded with each forecast day.
    """
    horizon = check_horizon(horizon)
    levels = check_levels(levels) if levels else ()
    for label, value in (("period", period), ("folds", folds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if folds > period:
        raise ValueError(f"folds ({folds}) cannot exceed the test period ({period} days)")
    name, template = _as_forecaster(model, params)
    y = np.asarray(closes, dtype="float64")
    n = len(y)
    dates = pd.to_datetime(np.asarray(dates)) if dates is not None else pd.RangeIndex(n)
    result = BacktestResult(params={"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)})
    need = max(template.min_points(), 2)
    if n < period + need:
        reason = (
            f"{n} rows; {name} needs {period} test days + {need} training rows = {period + need}"
        )
        result.skipped = pd.DataFrame([{"coin": coin, "model": name, "fold": None, "reason": reason}])
        if progress is not None:
            progress.update(folds)
        return result
    fold_rows, skipped, forecast_rows = [], [], []
    for i, start in enumerate(fold_starts(n, period, folds)):
        h = min(horizon, n - start)
        train = y[:start]
        try:
            fitted = clone(template).fit(train)
            forecast = fitted.predict(h)
            try:
                bounds = fitted.predict_interval(h, levels) if levels else {}
            except ValueError:  # too short a window to calibrate: no intervals in this fold
                bounds = {}
        except ValueError as exc:
            skipped.append({"coin": coin, "model": name, "fold": i, "reason": str(exc)})
            if progress is not None:
                progress.update(1)
            continue
        actual = y[start : start + h]
        metrics = score(actual, forecast, train[-1], train)
        fold_rows.append(
            {
                "coin": coin,
                "model": name,
                "fold": i,
                "train_start": dates[0],
                "train_end": dates[start - 1],
                "n_train": start,
                "horizon": h,
                **metrics,
            }
        )
        for k in range(h):
            row = {
                "coin": coin,
                "model": name,
                "fold": i,
                "step": k + 1,
                "date": dates[start + k],
                "last_close": train[-1],
                "actual": actual[k],
                "forecast": forecast[k],
            }
            for level in levels:
                lo, hi = bounds.get(level, (None, None))
                row[f"lower_{level_key(level)}"] = float(lo[k]) if lo is not None else float("nan")
                row[f"upper_{level_key(level)}"] = float(hi[k]) if hi is not None else float("nan")
            forecast_rows.append(row)
        if store is not None:
            store.save(
                coin, name, fitted, train_start=dates[0], train_end=dates[start - 1], metrics=metrics
            )
        if progress is not None:
            progress.update(1)
    if fold_rows:
        result.folds = pd.DataFrame(fold_rows, columns=FOLD_COLUMNS)
        result.forecasts = pd.DataFrame(forecast_rows, columns=FORECAST_COLUMNS + interval_columns(levels))
    if skipped:
        result.skipped = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return result


def run_backtest(
    coins: Sequence[str] | None = None,
    models: Sequence[str | BaseForecaster] = ("naive", "linear"),
    *,
    loader: "CryptoLoader | None" = None,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    store: "ModelStore | None" = None,
    progress: bool = False,
    levels: Sequence[float] = DEFAULT_LEVELS,
    start: Any = None,
    end: Any = None,
) -> BacktestResult:
    """Backtest every model on every coin (``coins=None``: all of the loader's coins).

    :param params: hyperparameters per model name, e.g. ``{"lstm": {"epochs": 5}}``.
    :param progress: show a tqdm progress bar (one tick per fold).
    :param start, end: the test window (inclusive) instead of each coin's last ``period`` days:
        closes after ``end`` are not read (a forecast near the end is scored on the days up to
        it), and each coin's test period is its closes from ``start`` on. A coin with fewer
        closes in the window than ``folds`` is reported in ``skipped``.
    """
    first_day = None if start is None else pd.Timestamp(start)
    last_day = None if end is None else pd.Timestamp(end)
    if first_day is not None and last_day is not None and last_day <= first_day:
        raise ValueError(f"end {last_day.date()} must be after start {first_day.date()}")
    if loader is None:
        from crypto_ml.data_loader import CryptoLoader

        loader = CryptoLoader()
    coin_ids = loader.get_crypto_names() if coins is None else [loader.resolve(c) for c in coins]
    coin_ids = list(dict.fromkeys(coin_ids))
    params = dict(params or {})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(coin_ids) * len(models) * folds, unit="fold", desc="backtest")
    parts = []
    try:
        for coin in coin_ids:
            closes, dates = loader.get_prices(coin)
            coin_period = period
            if last_day is not None:
                keep = pd.to_datetime(dates) <= last_day
                closes, dates = closes[keep], dates[keep]
            if first_day is not None:
                coin_period = int((pd.to_datetime(dates) >= first_day).sum())
            for model in models:
                if bar is not None:
                    bar.set_postfix_str(f"{coin} {getattr(model, 'name', model)}", refresh=False)
                if coin_period < folds:
                    window = f"{first_day.date()} .. {last_day.date() if last_day is not None else 'the end'}"
                    skipped = BacktestResult(params={"period": period, "folds": folds, "horizon": horizon,
                                                     "levels": list(levels)})
                    skipped.skipped = pd.DataFrame([{
                        "coin": coin, "model": getattr(model, "name", str(model)), "fold": None,
                        "reason": f"{coin_period} closes in the window {window}, fewer than {folds} folds"}],
                        columns=SKIPPED_COLUMNS)
                    parts.append(skipped)
                    if bar is not None:
                        bar.update(folds)
                    continue
                model_params = None if isinstance(model, BaseForecaster) else params.get(str(model))
                parts.append(
                    backtest_series(
                        model,
                        closes,
                        dates,
                        coin=coin,
                        period=coin_period,
                        folds=folds,
                        horizon=horizon,
                        params=model_params,
                        store=store,
                        progress=bar,
                        levels=levels,
                    )
                )
    finally:
        if bar is not None:
            bar.close()
    result = BacktestResult.concat(parts)
    if first_day is not None or last_day is not None:
        result.params.update(start=None if first_day is None else first_day.date(),
                             end=None if last_day is None else last_day.date())
        if first_day is not None:
            result.params["period"] = None
    return result


# -- reporting ----------------------------------------------------------------------------------
def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]

    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "nan" if not math.isfinite(v) else floatfmt.format(v)
        if isinstance(v, pd.Timestamp):
            return str(v.date())
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def format_report(result: BacktestResult, *, per_coin: bool = True) -> str:
    """Aggregate table, per-coin table and the skipped list, as Markdown."""
    p = result.params
    if p.get("start") is not None:
        window = f"{p['start']} .. {p.get('end') or 'the last close'}"
    elif p.get("end") is not None:
        window = f"last {p.get('period')} days up to {p['end']}"
    else:
        window = f"last {p.get('period')} days"
    parts = [
        f"Walk-forward backtest: {window}, {p.get('folds')} folds, "
        f"horizon {p.get('horizon')} days, expanding training window.",
        "",
        "## Aggregate, like-for-like (coins where every model ran; mean over coins of the "
        "per-coin means over folds)",
        "",
        markdown_table(result.aggregate()),
        "",
        "## Aggregate over every coin each model could run on",
        "",
        markdown_table(result.aggregate(common=False)),
    ]
    coverage = result.coverage()
    if not coverage.empty:
        parts += [
            "",
            "## Prediction intervals: coverage (% of actual closes inside), width and Winkler "
            "interval score (% of the last close; lower is better), every forecast day of every fold",
            "",
            markdown_table(coverage),
        ]
    if per_coin:
        parts += ["", "## Per coin", "", markdown_table(result.summary)]
    if not result.skipped.empty:
        skipped = result.skipped.copy()
        skipped["fold"] = skipped["fold"].map(lambda v: "all" if v is None or pd.isna(v) else int(v))
        parts += ["", f"## Skipped ({len(skipped)})", "", markdown_table(skipped)]
    return "\n".join(parts)


def plot_forecasts(result: BacktestResult, path: str | Path, *, max_coins: int = 12) -> Path:
    """PNG of actual closes vs each fold's forecast, one panel per coin (the first ``max_coins``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fc = result.forecasts
    coins = list(dict.fromkeys(fc["coin"]))[:max_coins] if not fc.empty else []
    ncols = 1 if len(coins) <= 1 else 2 if len(coins) <= 4 else 3
    nrows = max(1, math.ceil(len(coins) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.2 * nrows), squeeze=False)
    colors = {}
    for ax, coin in zip(axes.flat, coins):
        sub = fc[fc["coin"] == coin]
        actual = sub.drop_duplicates("date").sort_values("date")
        ax.plot(actual["date"], actual["actual"], color="black", lw=1, label="actual")
        for (model, _fold), seg in sub.groupby(["model", "fold"], sort=False):
            color = colors.setdefault(model, f"C{len(colors)}")
            first = not any(line.get_label() == model for line in ax.lines)
            ax.plot(seg["date"], seg["forecast"], color=color, lw=1.2, label=model if first else "_")
        ax.set_title(coin)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(coins):]:
        ax.axis("off")
    if not coins:
        axes.flat[0].text(0.5, 0.5, "no forecasts (every coin skipped)", ha="center")
    fig.suptitle("Walk-forward backtest: actual vs forecast")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
