"""Strategy backtest: replay the trading rule day by day and see whether it makes money.

For each day of the period and each coin with a close that day, the model forecasts from the
closes **up to that day only** (:func:`~crypto_ml.evaluation.forecasts.forecast_days`), and the
rule is replayed on a paper ledger (:func:`~crypto_ml.evaluation.simulation.simulate`).

Reported per coin and over all coins: total return, annualised volatility, Sharpe ratio (daily
returns, 365 trading days a year, no risk-free rate), maximum drawdown, hit rate (share of closed
round trips that made money after fees), turnover (traded notional over capital), fees paid; and
the same for buy-and-hold of the same coins and for never trading (a flat line at the capital).

>>> from crypto_ml.evaluation import run_strategy, default_rules
>>> report = run_strategy(["bitcoin", "ethereum"], ["naive", "drift"], default_rules(), days=90)
>>> report.summary         # one row per model x rule, plus buy-and-hold and no-trade
>>> report.write("artifacts/strategy")   # Markdown, equity PNG, orders CSV, per-coin CSV
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crypto_ml.evaluation.backtest import check_window
from crypto_ml.evaluation.forecasts import check_series, forecast_days
from crypto_ml.evaluation.metrics import curve_metrics, simulation_metrics
from crypto_ml.evaluation.simulation import (
    DEFAULT_FEE_BPS,
    DEFAULT_SLIPPAGE_BPS,
    ORDER_COLUMNS,
    buy_and_hold,
    simulate,
)
from crypto_ml.forecasting import DEFAULT_LEVELS
from crypto_ml.trading.rules import TradingRules

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader

METRIC_COLUMNS = [
    "total_return",
    "ann_volatility",
    "sharpe",
    "max_drawdown",
    "hit_rate",
    "round_trips",
    "trades",
    "turnover",
    "fees",
]


def default_rules(
    fee_bps: float = DEFAULT_FEE_BPS, slippage_bps: float = DEFAULT_SLIPPAGE_BPS, threshold: float = 0.02
) -> dict[str, TradingRules]:
    """The rules compared by default: the shipped rule (point forecast, costs not in the decision),
    the point rule net of costs, and the 80 % and 95 % interval rules net of costs."""
    return {
        "shipped": TradingRules(threshold=threshold),
        "point-net": TradingRules(threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps),
        "interval80": TradingRules(
            threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps, interval_level=80
        ),
        "interval95": TradingRules(
            threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps, interval_level=95
        ),
    }


@dataclass
class StrategyReport:
    """Everything a strategy backtest produced: ``summary`` (model x rule, plus buy-and-hold and
    no-trade), ``per_coin``, ``orders`` (every simulated order), ``equity`` (one column per run),
    ``timings`` (seconds per model for forecasts, per run for the replay), ``params`` and
    ``prices`` (the window's closes, one column per coin: everything the replay marked at)."""

    summary: pd.DataFrame
    per_coin: pd.DataFrame
    orders: pd.DataFrame
    equity: pd.DataFrame
    forecasts: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    prices: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, out: str | Path, *, stem: str = "strategy") -> dict[str, Path]:
        """Write ``<stem>.md`` (report), ``<stem>_equity.png``, ``<stem>_orders.csv``,
        ``<stem>_per_coin.csv`` and ``<stem>_equity.csv`` into ``out``; returns the paths."""
        from crypto_ml.evaluation.reports import write_strategy_report

        return write_strategy_report(self, out, stem=stem)


@dataclass
class _Runs:
    """What the model x rule runs produced, gathered for the report."""

    summary_rows: list = field(default_factory=list)
    per_coin: list = field(default_factory=list)
    orders: list = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    forecasts: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def _check_days(days: int | None, start: Any) -> int | None:
    """``days`` checked (an int >= 2, 365 when neither it nor ``start`` is given)."""
    if days is not None and start is not None:
        raise ValueError("give days or start, not both")
    if days is None and start is None:
        days = 365
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 2):
        raise ValueError(f"days must be an int >= 2, got {days!r}")
    return days


def _load_series(
    series: Mapping[str, tuple[Any, Any]] | None,
    loader: CryptoLoader | None,
    coins: Sequence[str] | None,
    last_day: pd.Timestamp | None,
) -> dict[str, tuple[Any, Any]]:
    """Per coin its checked closes and dates up to ``last_day`` (from ``series`` or the loader)."""
    if series is None:
        if loader is None:
            from crypto_ml.data.loader import CryptoLoader

            loader = CryptoLoader()
        ids = loader.get_crypto_names() if coins is None else [loader.resolve(c) for c in coins]
        series = {coin: loader.get_prices(coin) for coin in dict.fromkeys(ids)}
    checked = {coin: check_series(coin, c, d) for coin, (c, d) in series.items()}
    if not checked:
        raise ValueError("no coins to backtest")
    if last_day is not None:  # nothing after the window's end is read
        cut = {coin: idx.searchsorted(last_day, side="right") for coin, (_, idx) in checked.items()}
        checked = {coin: (y[: cut[coin]], idx[: cut[coin]]) for coin, (y, idx) in checked.items()}
    return checked


def _window_prices(checked: Mapping[str, tuple[Any, Any]], days: int | None, first_day, last_day):
    """The window's closes (one column per coin with a close in it), its first and last day, its
    length in days and the coins without a close in it."""
    ends = [idx[-1] for _, idx in checked.values() if len(idx)]
    if not ends:
        raise ValueError(f"no closes on or before {last_day.date()}")
    end = max(ends) if last_day is None else min(last_day, max(ends))
    start = first_day if first_day is not None else end - pd.Timedelta(days=days - 1)
    days = int((end - start).days) + 1
    prices = pd.DataFrame({coin: pd.Series(y, index=idx) for coin, (y, idx) in checked.items() if len(idx)})
    prices = prices.loc[(prices.index >= start) & (prices.index <= end)]
    without = sorted(c for c in checked if c not in prices.columns or not prices[c].notna().any())
    prices = prices.loc[:, prices.notna().any()]
    if prices.empty:
        raise ValueError(f"no closes between {start.date()} and {end.date()}")
    return prices, start, end, days, without


def _forecasts(
    model: str, checked: Mapping, coins: Sequence[str], bar: Any, **settings
) -> dict[str, pd.DataFrame]:
    """:func:`forecast_days` of ``model`` for each coin (the coins with none left out)."""
    forecasts = {}
    for coin in coins:
        y, idx = checked[coin]
        frame = forecast_days(model, y, idx, coin=coin, **settings)
        if not frame.empty:
            forecasts[coin] = frame
        if bar is not None:
            bar.update(1)
    return forecasts


def _replay_rules(
    runs: _Runs,
    model: str,
    forecasts: Mapping[str, pd.DataFrame],
    prices: pd.DataFrame,
    rules: Mapping[str, TradingRules],
    **costs,
) -> None:
    """Simulate every rule over ``model``'s forecasts and gather the results into ``runs``."""
    for name, rule in rules.items():
        began = time.perf_counter()
        sim = simulate(forecasts, prices, rule, model=model, rule=name, **costs)
        runs.timings[f"replay {model}/{name}"] = time.perf_counter() - began
        overall, coins_frame = simulation_metrics(sim, rule.max_position_notional)
        runs.summary_rows.append({"model": model, "rule": name, "rule_detail": rule.describe(), **overall})
        runs.per_coin.append(coins_frame.assign(model=model, rule=name))
        runs.orders.append(sim["orders"])
        runs.curves[f"{model}/{name}"] = sim["equity"]


def _benchmarks(prices: pd.DataFrame, capital: float, fee_bps: float, slippage_bps: float):
    """Buy-and-hold and no-trade: their summary rows and equity curves."""
    bh = buy_and_hold(prices, capital, fee_bps=fee_bps, slippage_bps=slippage_bps)
    bh_row = {
        "model": "buy-and-hold",
        "rule": "-",
        "rule_detail": "equal weights, held",
        **curve_metrics(bh, capital),
        "hit_rate": float("nan"),
        "round_trips": 0,
        "trades": int(prices.iloc[0].notna().sum()),
        "turnover": 1.0,
        "fees": capital * fee_bps / 1e4,
    }
    flat = pd.Series(capital, index=prices.index, name="no-trade")
    none_row = {
        "model": "no-trade",
        "rule": "-",
        "rule_detail": "never trades",
        **curve_metrics(flat, capital),
        "hit_rate": float("nan"),
        "round_trips": 0,
        "trades": 0,
        "turnover": 0.0,
        "fees": 0.0,
    }
    return (bh_row, none_row), {"buy-and-hold": bh, "no-trade": flat}


def _summary(rows: list[dict], bh_row: dict, none_row: dict) -> pd.DataFrame:
    summary = pd.DataFrame(rows + [bh_row, none_row])
    summary["vs_buy_and_hold"] = summary["total_return"] - bh_row["total_return"]
    summary["vs_no_trade"] = summary["total_return"]
    return summary[["model", "rule", "rule_detail", *METRIC_COLUMNS, "vs_buy_and_hold", "vs_no_trade"]]


def _per_coin(frames: list[pd.DataFrame], prices: pd.DataFrame, cost: float) -> pd.DataFrame:
    """Every run's per-coin metrics, with each coin's own buy-and-hold return."""
    first, last = prices.ffill().iloc[0], prices.ffill().iloc[-1]
    coin_bh = (last / first * (1 - cost) - 1).rename("coin_buy_and_hold")
    per = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not per.empty:
        per["buy_and_hold"] = per["coin"].map(coin_bh)
        per = per[["model", "rule", "coin", *METRIC_COLUMNS, "buy_and_hold"]]
    return per


@dataclass
class StrategyPlan:
    """A strategy backtest's checked inputs, before any forecast: per coin its closes and dates up to
    the window's end (``checked``), the window's closes (``prices``), its first and last day, the
    models, rules and settings. :func:`plan_strategy` makes it, :meth:`coins` and
    :meth:`forecast_settings` say what each model must forecast, :func:`strategy_report` replays it."""

    models: list[str]
    rules: dict[str, TradingRules]
    checked: dict[str, tuple[Any, Any]]
    prices: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    days: int
    without: list[str]
    horizon: int
    levels: list[float]
    refit_every: int
    fee_bps: float
    slippage_bps: float
    params: dict[str, Mapping[str, Any]]

    @property
    def coins(self) -> list[str]:
        """The coins with a close in the window, in the replay's order."""
        return list(self.prices.columns)

    def forecast_settings(self, model: str) -> dict[str, Any]:
        """The keyword arguments of :func:`forecast_days` for ``model`` (but the series and coin)."""
        return {
            "start": self.start,
            "horizon": self.horizon,
            "levels": self.levels,
            "refit_every": self.refit_every,
            "params": self.params.get(model),
        }


def plan_strategy(
    coins: Sequence[str] | None = None,
    models: Sequence[str] = ("naive", "drift", "ar"),
    rules: Mapping[str, TradingRules] | None = None,
    *,
    loader: CryptoLoader | None = None,
    series: Mapping[str, tuple[Any, Any]] | None = None,
    days: int | None = None,
    start: Any = None,
    end: Any = None,
    horizon: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    refit_every: int = 7,
    fee_bps: float = DEFAULT_FEE_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> StrategyPlan:
    """The :class:`StrategyPlan` of :func:`run_strategy` (same arguments, checked here)."""
    days = _check_days(days, start)
    first_day, last_day = check_window(start, end)
    rules = dict(rules or default_rules(fee_bps, slippage_bps))
    if not rules:
        raise ValueError("rules must name at least one TradingRules")
    checked = _load_series(series, loader, coins, last_day)
    prices, start, end, days, without = _window_prices(checked, days, first_day, last_day)
    return StrategyPlan(
        models=list(models),
        rules=rules,
        checked=checked,
        prices=prices,
        start=start,
        end=end,
        days=days,
        without=without,
        horizon=horizon,
        levels=list(levels),
        refit_every=refit_every,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        params=dict(params or {}),
    )


def run_strategy(
    coins: Sequence[str] | None = None,
    models: Sequence[str] = ("naive", "drift", "ar"),
    rules: Mapping[str, TradingRules] | None = None,
    *,
    loader: CryptoLoader | None = None,
    series: Mapping[str, tuple[Any, Any]] | None = None,
    days: int | None = None,
    start: Any = None,
    end: Any = None,
    horizon: int = 10,
    levels: Sequence[float] = DEFAULT_LEVELS,
    refit_every: int = 7,
    fee_bps: float = DEFAULT_FEE_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
) -> StrategyReport:
    """Strategy backtest of every model x rule over a window of the data: ``start`` .. ``end``
    (inclusive), or the last ``days`` days up to ``end`` (default 365; ``end`` default: the last
    close). Nothing after ``end`` is read; closes before the window train the models.

    :param coins: coin ids or names (None: every coin of the loader).
    :param series: instead of a loader, ``{coin: (closes, dates)}`` (e.g. synthetic series).
    :param rules: name -> :class:`TradingRules` (default :func:`default_rules` with these costs).
    :param fee_bps, slippage_bps: execution costs per side of every simulated order.
    """
    plan = plan_strategy(
        coins,
        models,
        rules,
        loader=loader,
        series=series,
        days=days,
        start=start,
        end=end,
        horizon=horizon,
        levels=levels,
        refit_every=refit_every,
        fee_bps=fee_bps,
        slippage_bps=slippage_bps,
        params=params,
    )
    forecasts, timings = _forecast_here(plan, progress)
    return strategy_report(plan, forecasts, timings)


def _forecast_here(plan: StrategyPlan, progress: bool) -> tuple[dict[str, dict[str, pd.DataFrame]], dict]:
    """Each model's point-in-time forecasts for every coin of the window, here."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan.models) * len(plan.coins), unit="coin", desc="strategy forecasts")
    forecasts, timings = {}, {}
    try:
        for model in plan.models:
            began = time.perf_counter()
            forecasts[model] = _forecasts(
                model, plan.checked, plan.coins, bar, **plan.forecast_settings(model)
            )
            timings[f"forecasts {model}"] = time.perf_counter() - began
    finally:
        if bar is not None:
            bar.close()
    return forecasts, timings


def strategy_report(
    plan: StrategyPlan,
    forecasts: Mapping[str, Mapping[str, pd.DataFrame]],
    timings: Mapping[str, float] | None = None,
) -> StrategyReport:
    """The :class:`StrategyReport` of ``plan`` from each model's forecasts (``{model: {coin:
    forecast_days frame}}``, the coins without a forecast left out): every rule replayed over
    them, here (the replay is cross-coin), and the benchmarks."""
    runs = _Runs(timings=dict(timings or {}))
    for model in plan.models:
        by_coin = {coin: frame for coin, frame in forecasts[model].items() if not frame.empty}
        if by_coin:
            runs.forecasts.append(pd.concat(by_coin.values(), ignore_index=True).assign(model=model))
        _replay_rules(
            runs,
            model,
            by_coin,
            plan.prices,
            plan.rules,
            horizon=plan.horizon,
            fee_bps=plan.fee_bps,
            slippage_bps=plan.slippage_bps,
        )
    prices, fee_bps, slippage_bps = plan.prices, plan.fee_bps, plan.slippage_bps
    capital = next(iter(plan.rules.values())).book_capital
    (bh_row, none_row), curves = _benchmarks(prices, capital, fee_bps, slippage_bps)
    return StrategyReport(
        summary=_summary(runs.summary_rows, bh_row, none_row),
        per_coin=_per_coin(runs.per_coin, prices, (fee_bps + slippage_bps) / 1e4),
        orders=(
            pd.concat(runs.orders, ignore_index=True) if runs.orders else pd.DataFrame(columns=ORDER_COLUMNS)
        ),
        equity=pd.DataFrame({**runs.curves, **curves}),
        forecasts=pd.concat(runs.forecasts, ignore_index=True) if runs.forecasts else pd.DataFrame(),
        timings=runs.timings,
        prices=prices,
        params={
            "days": plan.days,
            "start": plan.start.date(),
            "end": plan.end.date(),
            "horizon": plan.horizon,
            "levels": list(plan.levels),
            "refit_every": plan.refit_every,
            "fee_bps": fee_bps,
            "slippage_bps": slippage_bps,
            "capital": capital,
            "coins": int(prices.shape[1]),
            "coins_without_closes": plan.without,
            "models": list(plan.models),
            "rules": {k: v.describe() for k, v in plan.rules.items()},
        },
    )
