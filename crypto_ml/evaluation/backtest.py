"""Walk-forward accuracy backtests with an expanding window.

For one coin's closes, the test period (the last ``period`` days) is split into ``folds`` equal
blocks. At the start of each block the forecaster is fitted on **all** closes before it and
forecasts ``horizon`` days, which are scored against what happened (the metrics of
:mod:`crypto_ml.evaluation.metrics`: ``mae``, ``rmse``, ``mape``, ``mase``, ``direction``).

Each fold also records the forecast's prediction intervals (``levels``, default 80 % and 95 %,
calibrated inside the fold's training window only); :meth:`BacktestResult.coverage` gives per model
and level the share of actual closes inside their interval and the mean interval width (in percent
of the last close), which should sit near the nominal level.

A coin shorter than ``period`` plus the model's minimum training length is reported in
``skipped`` with the reason; so is a fold whose fit fails on degenerate data. Nothing is dropped
silently. :func:`backtest_series` is the unit of work (one coin, one model);
:func:`run_backtest` runs it for every coin and model of a loader.

>>> from crypto_ml.evaluation import run_backtest, format_report
>>> result = run_backtest(["bitcoin", "ethereum"], ["naive", "linear"], folds=6)
>>> result.summary          # one row per coin x model; result.folds has one row per fold
>>> print(format_report(result))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crypto_ml.evaluation import metrics
from crypto_ml.evaluation.metrics import METRICS
from crypto_ml.forecasting import (
    DEFAULT_LEVELS,
    BaseForecaster,
    check_horizon,
    check_levels,
    level_key,
    make_forecaster,
)

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.storage.model_store import ModelStore

FOLD_COLUMNS = ["coin", "model", "fold", "train_start", "train_end", "n_train", "horizon", *METRICS]
SKIPPED_COLUMNS = ["coin", "model", "fold", "reason"]
FORECAST_COLUMNS = ["coin", "model", "fold", "step", "date", "last_close", "actual", "forecast"]


def interval_columns(levels: Sequence[float]) -> list[str]:
    """``lower_80, upper_80, lower_95, upper_95`` for levels (80, 95)."""
    return [f"{side}_{level_key(v)}" for v in levels for side in ("lower", "upper")]


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
        return metrics.summarize(self.folds)

    def aggregate(self, baseline: str = "naive", *, common: bool = True) -> pd.DataFrame:
        """Per model over coins: mean of the per-coin metrics and the median MASE.

        :param common: like-for-like: only the coins on which *every* model ran (a model with a
            longer minimum history, like the LSTM, is otherwise averaged over fewer coins).
        :param baseline: when it was run, add ``beats_<baseline>`` (on how many coins the model's
            MASE is below the baseline's) and ``mase_vs_<baseline>`` (mean over those paired coins
            of MASE / baseline MASE; below 1 means better than the baseline).
        """
        return metrics.aggregate(self.summary, baseline, common=common)

    def coverage(self, *, common: bool = False) -> pd.DataFrame:
        """Per model and level over every forecast day with an interval: ``coverage`` (share of
        actual closes inside), ``mean_width_pct`` / ``median_width_pct`` (of (upper - lower) / last close,
        percent; the mean is dominated by the wildest coins), ``interval_score_pct`` (mean
        Winkler score, :func:`~crypto_ml.evaluation.metrics.interval_score`, over the last close,
        percent), ``miss_below`` / ``miss_above`` (shares below the lower / above the upper bound).

        :param common: only the coins on which every model produced intervals.
        """
        return metrics.coverage_table(self.forecasts, self.params.get("levels") or [], common=common)

    @classmethod
    def concat(cls, parts: Iterable[BacktestResult]) -> BacktestResult:
        parts = list(parts)
        out = cls()
        for name in ("folds", "skipped", "forecasts"):
            frames = [getattr(p, name) for p in parts if not getattr(p, name).empty]
            if frames:
                setattr(out, name, pd.concat(frames, ignore_index=True))
        if parts:
            out.params = dict(parts[0].params)
        return out


def _settings(period: int, folds: int, horizon: int, levels: Sequence[float]) -> dict[str, Any]:
    """The backtest's settings, checked: ``{period, folds, horizon, levels}``."""
    horizon = check_horizon(horizon)
    levels = check_levels(levels) if levels else ()
    for label, value in (("period", period), ("folds", folds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if folds > period:
        raise ValueError(f"folds ({folds}) cannot exceed the test period ({period} days)")
    return {"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)}


def _as_forecaster(
    model: str | BaseForecaster, params: Mapping[str, Any] | None
) -> tuple[str, BaseForecaster]:
    if isinstance(model, BaseForecaster):
        return model.name, model
    return str(model), make_forecaster(str(model), **dict(params or {}))


def _advance(progress: Any, n: int) -> None:
    if progress is not None:
        progress.update(n)


def _fit_fold(template: BaseForecaster, train: np.ndarray, h: int, levels: Sequence[float]):
    """A copy of ``template`` fitted on ``train``, its ``h``-day forecast and intervals (``{}``
    when the window is too short to calibrate them); a ``ValueError`` when the fit fails."""
    fitted = clone(template).fit(train)
    forecast = fitted.predict(h)
    try:
        bounds = fitted.predict_interval(h, levels) if levels else {}
    except ValueError:  # too short a window to calibrate: no intervals in this fold
        bounds = {}
    return fitted, forecast, bounds


def _forecast_rows(
    base: dict[str, Any],
    dates: Any,
    start: int,
    last_close: float,
    actual: np.ndarray,
    forecast: np.ndarray,
    bounds: dict,
    levels: Sequence[float],
) -> list[dict[str, Any]]:
    """One row per forecast day of a fold (``base``: its coin, model and fold)."""
    rows = []
    for k in range(len(actual)):
        row = {
            **base,
            "step": k + 1,
            "date": dates[start + k],
            "last_close": last_close,
            "actual": actual[k],
            "forecast": forecast[k],
        }
        for level in levels:
            lo, hi = bounds.get(level, (None, None))
            row[f"lower_{level_key(level)}"] = float(lo[k]) if lo is not None else float("nan")
            row[f"upper_{level_key(level)}"] = float(hi[k]) if hi is not None else float("nan")
        rows.append(row)
    return rows


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
    store: ModelStore | None = None,
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
    settings = _settings(period, folds, horizon, levels)
    name, template = _as_forecaster(model, params)
    y = np.asarray(closes, dtype="float64")
    n = len(y)
    dates = pd.to_datetime(np.asarray(dates)) if dates is not None else pd.RangeIndex(n)
    result = BacktestResult(params=settings)
    need = max(template.min_points(), 2)
    if n < period + need:
        reason = f"{n} rows; {name} needs {period} test days + {need} training rows = {period + need}"
        result.skipped = pd.DataFrame([{"coin": coin, "model": name, "fold": None, "reason": reason}])
        _advance(progress, folds)
        return result
    return _walk_forward(result, template, name, coin, y, dates, store, progress)


def _walk_forward(
    result: BacktestResult,
    template: BaseForecaster,
    name: str,
    coin: str,
    y: np.ndarray,
    dates: Any,
    store: ModelStore | None,
    progress: Any,
) -> BacktestResult:
    """The folds of :func:`backtest_series` (settings in ``result.params``), into ``result``."""
    period, folds, horizon, levels = (result.params[k] for k in ("period", "folds", "horizon", "levels"))
    n = len(y)
    fold_rows, skipped, forecast_rows = [], [], []
    for i, start in enumerate(fold_starts(n, period, folds)):
        h, train = min(horizon, n - start), y[:start]
        try:
            fitted, forecast, bounds = _fit_fold(template, train, h, levels)
        except ValueError as exc:
            skipped.append({"coin": coin, "model": name, "fold": i, "reason": str(exc)})
            _advance(progress, 1)
            continue
        actual = y[start : start + h]
        scores = metrics.score(actual, forecast, train[-1], train)
        base = {"coin": coin, "model": name, "fold": i}
        fold_rows.append(
            {
                **base,
                "train_start": dates[0],
                "train_end": dates[start - 1],
                "n_train": start,
                "horizon": h,
                **scores,
            }
        )
        forecast_rows += _forecast_rows(base, dates, start, train[-1], actual, forecast, bounds, levels)
        if store is not None:
            store.save(coin, name, fitted, train_start=dates[0], train_end=dates[start - 1], metrics=scores)
        _advance(progress, 1)
    if fold_rows:
        result.folds = pd.DataFrame(fold_rows, columns=FOLD_COLUMNS)
        result.forecasts = pd.DataFrame(forecast_rows, columns=FORECAST_COLUMNS + interval_columns(levels))
    if skipped:
        result.skipped = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return result


def check_window(
    start: Any, end: Any, *, period: int | None = None, folds: int | None = None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``start`` and ``end`` of a test window as timestamps (None stays None), or a
    ``ValueError`` when ``end`` is not after ``start``, or, without ``start`` (each coin's last
    ``period`` days are tested), when ``period`` is shorter than ``folds``."""
    first_day = None if start is None else pd.Timestamp(start)
    last_day = None if end is None else pd.Timestamp(end)
    if first_day is not None and last_day is not None and last_day <= first_day:
        raise ValueError(f"end {last_day.date()} must be after start {first_day.date()}")
    if first_day is None and period is not None and folds is not None and period < folds:
        raise ValueError(
            f"period {period} is shorter than folds {folds}: each fold needs at least one "
            "test day (give a longer period, fewer folds, or a window with start)"
        )
    return first_day, last_day


def _coin_ids(loader: CryptoLoader | None, coins: Sequence[str] | None) -> tuple[CryptoLoader, list[str]]:
    """The loader (default: a :class:`~crypto_ml.data.loader.CryptoLoader`) and the coin ids, once each."""
    if loader is None:
        from crypto_ml.data.loader import CryptoLoader

        loader = CryptoLoader()
    coin_ids = loader.get_crypto_names() if coins is None else [loader.resolve(c) for c in coins]
    return loader, list(dict.fromkeys(coin_ids))


def _windowed(closes: Any, dates: Any, first_day, last_day, period: int) -> tuple[Any, Any, int]:
    """The closes up to ``last_day`` and the test period: the closes from ``first_day`` on, or ``period``."""
    if last_day is not None:
        keep = pd.to_datetime(dates) <= last_day
        closes, dates = closes[keep], dates[keep]
    coin_period = period if first_day is None else int((pd.to_datetime(dates) >= first_day).sum())
    return closes, dates, coin_period


def _too_few_in_window(
    coin: str, model: Any, coin_period: int, settings: dict, first_day, last_day
) -> BacktestResult:
    if first_day is None:
        window = f"of the last {settings['period']} days"
    else:
        window = f"{first_day.date()} .. {last_day.date() if last_day is not None else 'the end'}"
    folds = settings["folds"]
    out = BacktestResult(params=dict(settings))
    out.skipped = pd.DataFrame(
        [
            {
                "coin": coin,
                "model": getattr(model, "name", str(model)),
                "fold": None,
                "reason": f"{coin_period} closes in the window {window}, fewer than {folds} folds",
            }
        ],
        columns=SKIPPED_COLUMNS,
    )
    return out


def run_backtest(
    coins: Sequence[str] | None = None,
    models: Sequence[str | BaseForecaster] = ("naive", "linear"),
    *,
    loader: CryptoLoader | None = None,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    store: ModelStore | None = None,
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
    first_day, last_day = check_window(start, end, period=period, folds=folds)
    loader, coin_ids = _coin_ids(loader, coins)
    params = dict(params or {})
    settings = {"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(coin_ids) * len(models) * folds, unit="fold", desc="backtest")
    parts = []
    try:
        for coin in coin_ids:
            closes, dates, coin_period = _windowed(*loader.get_prices(coin), first_day, last_day, period)
            for model in models:
                if bar is not None:
                    bar.set_postfix_str(f"{coin} {getattr(model, 'name', model)}", refresh=False)
                if coin_period < folds:
                    parts.append(_too_few_in_window(coin, model, coin_period, settings, first_day, last_day))
                    _advance(bar, folds)
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
    return _with_window(BacktestResult.concat(parts), first_day, last_day)


def _with_window(result: BacktestResult, first_day, last_day) -> BacktestResult:
    """``result`` with the test window in its params (``period`` None when it starts on a day)."""
    if first_day is not None or last_day is not None:
        result.params.update(
            start=None if first_day is None else first_day.date(),
            end=None if last_day is None else last_day.date(),
        )
        if first_day is not None:
            result.params["period"] = None
    return result
