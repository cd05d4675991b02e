"""Strategy backtest: replay the trading rule day by day and see whether it makes money.

For each day of the period and each coin with a close that day, the model forecasts from the
closes **up to that day only** (refitted every ``refit_every`` days on the closes up to the refit
day, moved to each later day with ``update``, exactly as a weekly trained version serves the daily
runs; the conformal intervals are calibrated inside the same training window). The prediction goes
through :func:`crypto_ml.trading.rules.decide`, the function the DAG's ``decide`` task calls, with
the position and gross notional of a :class:`~crypto_ml.trading.brokers.PaperBroker` on a
throw-away SQLite database (the paper ledger's own code). A trade is placed on that ledger at the
day's close moved against us by the slippage, the fee is paid in cash, and every position is
marked to market at each day's close.

Reported per coin and over all coins: total return, annualised volatility, Sharpe ratio (daily
returns, 365 trading days a year, no risk-free rate), maximum drawdown, hit rate (share of closed
round trips that made money after fees), turnover (traded notional over capital), fees paid; and
the same for buy-and-hold of the same coins and for never trading (a flat line at the capital).

>>> from crypto_ml.strategy import run_strategy, default_rules
>>> report = run_strategy(["bitcoin", "ethereum"], ["naive", "drift"], default_rules(), days=90)
>>> report.summary         # one row per model x rule, plus buy-and-hold and no-trade
>>> report.write("artifacts/strategy")   # Markdown, equity PNG, orders CSV, per-coin CSV
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from crypto_ml.forecasting.base import DEFAULT_LEVELS, check_horizon, check_levels, level_key
from crypto_ml.trading.rules import TradingRules, decide

if TYPE_CHECKING:
    from crypto_ml.data_loader import CryptoLoader

#: Days per year for annualising (crypto trades every day).
PERIODS_PER_YEAR = 365
#: Execution costs of the backtest, basis points per side, unless given.
DEFAULT_FEE_BPS = 10.0
DEFAULT_SLIPPAGE_BPS = 5.0

ORDER_COLUMNS = [
    "model", "rule", "date", "coin", "side", "quantity", "last_close", "price", "notional", "fee",
    "status", "reason", "expected_return", "position_after",
]
METRIC_COLUMNS = [
    "total_return", "ann_volatility", "sharpe", "max_drawdown", "hit_rate", "round_trips",
    "trades", "turnover", "fees",
]


def default_rules(fee_bps: float = DEFAULT_FEE_BPS, slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
                  threshold: float = 0.02) -> dict[str, TradingRules]:
    """The rules compared by default: the shipped rule (point forecast, costs not in the decision),
    the point rule net of costs, and the 80 % and 95 % interval rules net of costs."""
    return {
        "shipped": TradingRules(threshold=threshold),
        "point-net": TradingRules(threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps),
        "interval80": TradingRules(threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps,
                                   interval_level=80),
        "interval95": TradingRules(threshold=threshold, fee_bps=fee_bps, slippage_bps=slippage_bps,
                                   interval_level=95),
    }


# -- forecasts, point in time ---------------------------------------------------------------------
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
    template = make_forecaster(model, **dict(params or {}))
    need = max(template.min_points(), 2)
    rows: list[dict[str, Any]] = []
    fitted = None
    train_end = None
    since_fit = 0
    keys = [level_key(v) for v in levels]
    for i in range(max(first, need - 1), len(y)):
        history = y[: i + 1]  # point in time: nothing after day i
        refit = fitted is None or since_fit >= refit_every
        try:
            if refit:
                fitted = make_forecaster(model, **dict(params or {}))
                fitted.calibration_steps = horizon  # only the steps the rule looks at
                fitted.fit(history)
                train_end, since_fit = idx[i], 0
            else:
                fitted.update(history)
            point = fitted.predict(horizon)
        except ValueError:
            fitted = None  # degenerate window (e.g. constant prices for AR): no forecast today
            continue
        since_fit += 1
        row = {
            "coin": coin, "date": idx[i], "last_close": float(y[i]), "forecast": float(point[-1]),
            "expected_return": float(point[-1] / y[i] - 1.0), "train_end": train_end, "refit": refit,
        }
        try:
            bounds = fitted.predict_interval(horizon, levels)
        except ValueError:
            bounds = {}
        for key, level in zip(keys, levels):
            lo, hi = bounds.get(level, (None, None))
            row[f"lower_{key}"] = float(lo[-1]) if lo is not None else float("nan")
            row[f"upper_{key}"] = float(hi[-1]) if hi is not None else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def _prediction(row: Any, keys: Sequence[str], model: str, horizon: int) -> dict[str, Any]:
    """The prediction dict the DAG's decide sees (horizon-end bounds only)."""
    intervals = {}
    for key in keys:
        lo, hi = getattr(row, f"lower_{key}"), getattr(row, f"upper_{key}")
        if math.isfinite(lo) and math.isfinite(hi):
            intervals[key] = {"lower": [lo], "upper": [hi]}
    return {
        "coin": row.coin, "as_of": row.date.date().isoformat(), "model": model, "version": 0,
        "horizon": horizon, "last_close": row.last_close, "expected_return": row.expected_return,
        "intervals": intervals or None,
    }


# -- metrics --------------------------------------------------------------------------------------
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


@dataclass
class _Book:
    """Cash, cost basis and round trips of one coin (the positions themselves are the ledger's)."""

    cash: float = 0.0
    qty: float = 0.0
    cost: float = 0.0  # cost basis of the open quantity, fees included
    fees: float = 0.0
    traded: float = 0.0
    trades: int = 0
    wins: int = 0
    round_trips: int = 0


def simulate(
    forecasts: Mapping[str, pd.DataFrame],
    prices: pd.DataFrame,
    rules: TradingRules,
    *,
    model: str = "model",
    rule: str = "rule",
    horizon: int = 10,
    fee_bps: float = DEFAULT_FEE_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    url: str | None = None,
) -> dict[str, Any]:
    """Replay ``rules`` over the forecasts, day by day, on a paper ledger; returns the orders, the
    daily equity, per-coin books and ``risk`` (per day: cash, exposure at market value, equity,
    largest coin's market value).

    Every decision sees the book (:class:`crypto_ml.trading.risk.Account`: the cash after fees,
    the positions marked at the day's closes, fees and slippage reserved for a buy); after the
    day's decisions, held coins are trimmed back within the caps
    (:func:`crypto_ml.trading.risk.trims`) and the book is checked: a negative cash or equity or a
    cap exceeded at the close raises a ``RuntimeError`` naming the day.

    :param forecasts: per coin, :func:`forecast_days` output.
    :param prices: closes, one column per coin, indexed by day (the marks; forward-filled).
    :param url: the ledger's database (default: a fresh SQLite file in a temporary folder, removed).
    """
    from crypto_ml.storage import dispose_engine, migrate
    from crypto_ml.trading.brokers import OrderRequest, PaperBroker
    from crypto_ml.trading.risk import Account, RiskLimits, trims, violations

    fee, slip = fee_bps / 1e4, slippage_bps / 1e4
    limits = RiskLimits.from_rules(rules)
    capital = limits.capital
    buy_cost = (1 + slip) * (1 + fee) - 1
    keys = sorted({c[len("lower_"):] for f in forecasts.values() for c in f.columns if c.startswith("lower_")})
    by_day: dict[pd.Timestamp, list[Any]] = {}
    for frame in forecasts.values():
        for row in frame.itertuples(index=False):
            by_day.setdefault(row.date, []).append(row)
    marks = prices.sort_index().ffill()
    books = {coin: _Book() for coin in prices.columns}
    orders: list[dict[str, Any]] = []
    equity, coin_pnl, risk_rows = [], [], []
    today: dict[str, float] = {}

    def account() -> Account:
        held = {c: b.qty for c, b in books.items() if b.qty}
        return Account(capital, capital + sum(b.cash for b in books.values()), held, today, buy_cost=buy_cost)

    with tempfile.TemporaryDirectory(prefix="crypto-ml-strategy-") as tmp:
        db = url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        migrate(db)
        broker = PaperBroker(db, allow_short=rules.allow_short, limits=limits, marks=lambda: today)

        def place(day, coin, side, quantity, last_close, reason, expected_return, tag=""):
            price = last_close * (1 + slip if side == "buy" else 1 - slip)
            order = OrderRequest(f"bt-{model}-{rule}-{coin}-{day.date()}{tag}"[:128], coin, side, quantity, price,
                                 day.date())
            result = broker.place_order(order)
            notional = quantity * price
            paid = notional * fee if result.status == "filled" else 0.0
            book = books[coin]
            if result.status == "filled":
                _book_fill(book, side, quantity, price, paid)
            orders.append({
                "model": model, "rule": rule, "date": day.date(), "coin": coin, "side": side,
                "quantity": quantity, "last_close": last_close, "price": price, "notional": notional,
                "fee": paid, "status": result.status, "reason": result.reason or reason,
                "expected_return": expected_return, "position_after": result.raw.get("position", book.qty),
            })

        try:
            for day in marks.index:
                close = marks.loc[day]
                today = {c: float(v) for c, v in close.items() if math.isfinite(v)}
                for row in sorted(by_day.get(day, ()), key=lambda r: r.coin):
                    prediction = _prediction(row, keys, model, horizon)
                    decision = decide(prediction=prediction, account=account(), kill_switch=False, rules=rules)
                    if decision.action == "trade":
                        place(day, row.coin, decision.side, decision.quantity, row.last_close, decision.reason,
                              row.expected_return)
                # Coins held without a forecast today are brought within the caps too.
                for coin, trim in sorted(trims(account(), limits).items()):
                    place(day, coin, trim.side, trim.quantity, today[coin], trim.reason, float("nan"), "-trim")
                book = account()
                wrong = violations(book, limits, rel=1e-6)
                if wrong:
                    raise RuntimeError(f"{model}/{rule} on {day.date()}: " + "; ".join(wrong))
                values = [abs(book.value(c)) for c in book.positions]
                risk_rows.append({"cash": book.cash, "exposure": book.exposure, "equity": book.equity,
                                  "max_coin": max(values, default=0.0)})
                pnl = {c: b.cash + (b.qty * float(close[c]) if b.qty else 0.0) for c, b in books.items()}
                coin_pnl.append(pnl)
                equity.append(capital + sum(pnl.values()))
            ledger = broker.positions()
        finally:
            dispose_engine(db)
    for coin, book in books.items():  # the ledger and the books must agree
        if not math.isclose(ledger.get(coin, 0.0), book.qty, rel_tol=1e-6, abs_tol=1e-9):
            raise RuntimeError(f"{coin}: ledger holds {ledger.get(coin, 0.0)}, the backtest's book {book.qty}")
    return {
        "orders": pd.DataFrame(orders, columns=ORDER_COLUMNS),
        "equity": pd.Series(equity, index=marks.index, name=f"{model}/{rule}"),
        "coin_pnl": pd.DataFrame(coin_pnl, index=marks.index),
        "risk": pd.DataFrame(risk_rows, index=marks.index),
        "books": books,
        "capital": capital,
    }


def _book_fill(book: _Book, side: str, qty: float, price: float, fee: float) -> None:
    notional = qty * price
    book.fees += fee
    book.traded += notional
    book.trades += 1
    if side == "buy":
        book.cash -= notional + fee
        book.cost += notional + fee
        book.qty += qty
        return
    book.cash += notional - fee
    if book.qty > 0:  # closing (part of) a long: a round trip
        share = min(qty, book.qty) / book.qty
        basis = book.cost * share
        book.round_trips += 1
        book.wins += int(notional - fee > basis)
        book.cost -= basis
    book.qty -= qty
    if abs(book.qty) < 1e-12:
        book.qty, book.cost = 0.0, 0.0


def _run_metrics(sim: dict[str, Any], coin_capital: float) -> tuple[dict[str, Any], pd.DataFrame]:
    books: dict[str, _Book] = sim["books"]
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
            round_trips=book.round_trips, trades=book.trades, turnover=book.traded / coin_capital,
            fees=book.fees,
        )
        rows.append(m)
    return overall, pd.DataFrame(rows)


def buy_and_hold(prices: pd.DataFrame, capital: float, *, fee_bps: float, slippage_bps: float) -> pd.Series:
    """Equity of buying every coin with a close on the first day, equal weights, at that close
    plus slippage and fee, then holding to the end."""
    marks = prices.sort_index().ffill()
    first = marks.iloc[0].dropna()
    if first.empty:
        return pd.Series(capital, index=marks.index)
    cost = (fee_bps + slippage_bps) / 1e4
    qty = (capital / len(first)) * (1 - cost) / first
    return (marks[first.index] * qty).sum(axis=1).rename("buy-and-hold")


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
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "report": out / f"{stem}.md",
            "plot": plot_equity(self, out / f"{stem}_equity.png"),
            "orders": out / f"{stem}_orders.csv",
            "per_coin": out / f"{stem}_per_coin.csv",
            "equity": out / f"{stem}_equity.csv",
        }
        self.orders.to_csv(paths["orders"], index=False)
        self.per_coin.to_csv(paths["per_coin"], index=False)
        self.equity.to_csv(paths["equity"], index_label="date")
        paths["report"].write_text(format_strategy_report(self) + "\n")
        return paths


def run_strategy(
    coins: Sequence[str] | None = None,
    models: Sequence[str] = ("naive", "drift", "ar"),
    rules: Mapping[str, TradingRules] | None = None,
    *,
    loader: "CryptoLoader | None" = None,
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
    if days is not None and start is not None:
        raise ValueError("give days or start, not both")
    if days is None and start is None:
        days = 365
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 2):
        raise ValueError(f"days must be an int >= 2, got {days!r}")
    first_day = None if start is None else pd.Timestamp(start)
    last_day = None if end is None else pd.Timestamp(end)
    if first_day is not None and last_day is not None and last_day <= first_day:
        raise ValueError(f"end {last_day.date()} must be after start {first_day.date()}")
    rules = dict(rules or default_rules(fee_bps, slippage_bps))
    if not rules:
        raise ValueError("rules must name at least one TradingRules")
    params = dict(params or {})
    if series is None:
        if loader is None:
            from crypto_ml.data_loader import CryptoLoader

            loader = CryptoLoader()
        ids = loader.get_crypto_names() if coins is None else [loader.resolve(c) for c in coins]
        series = {coin: loader.get_prices(coin) for coin in dict.fromkeys(ids)}
    checked = {coin: check_series(coin, c, d) for coin, (c, d) in series.items()}
    if not checked:
        raise ValueError("no coins to backtest")
    if last_day is not None:  # nothing after the window's end is read
        checked = {coin: (y[: idx.searchsorted(last_day, side="right")], idx[: idx.searchsorted(last_day, side="right")])
                   for coin, (y, idx) in checked.items()}
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
    capital = next(iter(rules.values())).book_capital
    timings: dict[str, float] = {}
    summary_rows, per_coin, orders, curves, all_forecasts = [], [], [], {}, []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(models) * len(prices.columns), unit="coin", desc="strategy forecasts")
    try:
        for model in models:
            began = time.perf_counter()
            forecasts = {}
            for coin in prices.columns:
                y, idx = checked[coin]
                frame = forecast_days(
                    model, y, idx, start=start, coin=coin, horizon=horizon, levels=levels,
                    refit_every=refit_every, params=params.get(model),
                )
                if not frame.empty:
                    forecasts[coin] = frame
                if bar is not None:
                    bar.update(1)
            timings[f"forecasts {model}"] = time.perf_counter() - began
            if forecasts:
                all_forecasts.append(pd.concat(forecasts.values(), ignore_index=True).assign(model=model))
            for name, rule in rules.items():
                began = time.perf_counter()
                sim = simulate(forecasts, prices, rule, model=model, rule=name, horizon=horizon,
                               fee_bps=fee_bps, slippage_bps=slippage_bps)
                timings[f"replay {model}/{name}"] = time.perf_counter() - began
                overall, coins_frame = _run_metrics(sim, rule.max_position_notional)
                summary_rows.append({"model": model, "rule": name, "rule_detail": rule.describe(), **overall})
                per_coin.append(coins_frame.assign(model=model, rule=name))
                orders.append(sim["orders"])
                curves[f"{model}/{name}"] = sim["equity"]
    finally:
        if bar is not None:
            bar.close()
    bh = buy_and_hold(prices, capital, fee_bps=fee_bps, slippage_bps=slippage_bps)
    cost = (fee_bps + slippage_bps) / 1e4
    bh_row = {"model": "buy-and-hold", "rule": "-", "rule_detail": "equal weights, held", **curve_metrics(bh, capital),
              "hit_rate": float("nan"), "round_trips": 0, "trades": int(prices.iloc[0].notna().sum()),
              "turnover": 1.0, "fees": capital * fee_bps / 1e4}
    flat = pd.Series(capital, index=prices.index, name="no-trade")
    none_row = {"model": "no-trade", "rule": "-", "rule_detail": "never trades", **curve_metrics(flat, capital),
                "hit_rate": float("nan"), "round_trips": 0, "trades": 0, "turnover": 0.0, "fees": 0.0}
    summary = pd.DataFrame(summary_rows + [bh_row, none_row])
    summary["vs_buy_and_hold"] = summary["total_return"] - bh_row["total_return"]
    summary["vs_no_trade"] = summary["total_return"]
    summary = summary[["model", "rule", "rule_detail", *METRIC_COLUMNS, "vs_buy_and_hold", "vs_no_trade"]]
    first, last = prices.ffill().iloc[0], prices.ffill().iloc[-1]
    coin_bh = (last / first * (1 - cost) - 1).rename("coin_buy_and_hold")
    per = pd.concat(per_coin, ignore_index=True) if per_coin else pd.DataFrame()
    if not per.empty:
        per["buy_and_hold"] = per["coin"].map(coin_bh)
        per = per[["model", "rule", "coin", *METRIC_COLUMNS, "buy_and_hold"]]
    equity = pd.DataFrame({**curves, "buy-and-hold": bh, "no-trade": flat})
    return StrategyReport(
        summary=summary,
        per_coin=per,
        orders=pd.concat(orders, ignore_index=True) if orders else pd.DataFrame(columns=ORDER_COLUMNS),
        equity=equity,
        forecasts=pd.concat(all_forecasts, ignore_index=True) if all_forecasts else pd.DataFrame(),
        timings=timings,
        prices=prices,
        params={"days": days, "start": start.date(), "end": end.date(), "horizon": horizon,
                "levels": list(levels), "refit_every": refit_every, "fee_bps": fee_bps,
                "slippage_bps": slippage_bps, "capital": capital, "coins": int(prices.shape[1]),
                "coins_without_closes": without,
                "models": list(models), "rules": {k: v.describe() for k, v in rules.items()}},
    )


# -- reporting ------------------------------------------------------------------------------------
def format_strategy_report(report: StrategyReport) -> str:
    """Markdown: parameters, the model x rule table, timings."""
    from crypto_ml.backtest import markdown_table

    p = report.params
    table = report.summary.copy()
    for col in ("total_return", "ann_volatility", "max_drawdown", "hit_rate", "vs_buy_and_hold", "vs_no_trade"):
        table[col] = table[col].map(lambda v: "n/a" if not math.isfinite(v) else f"{v * 100:+.2f}%")
    table["sharpe"] = table["sharpe"].map(lambda v: "n/a" if not math.isfinite(v) else f"{v:.2f}")
    table["turnover"] = table["turnover"].map(lambda v: f"{v:.2f}x")
    table["fees"] = table["fees"].map(lambda v: f"{v:,.0f}")
    lines = [
        f"Strategy backtest: {p.get('coins')} coins, {p.get('start')} .. {p.get('end')} ({p.get('days')} days), "
        f"horizon {p.get('horizon')} days, refit every {p.get('refit_every')} days (updated daily), "
        f"capital {p.get('capital'):,.0f} USD, execution costs {p.get('fee_bps'):g} bps fee + "
        f"{p.get('slippage_bps'):g} bps slippage per side.",
        "",
        *([f"Coins without a close in the window (not traded): {', '.join(p['coins_without_closes'])}.", ""]
          if p.get("coins_without_closes") else []),
        "Rules: " + "; ".join(f"`{k}` = {v}" for k, v in (p.get("rules") or {}).items()),
        "",
        markdown_table(table),
        "",
        "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()),
    ]
    return "\n".join(lines)


def plot_equity(report: StrategyReport, path: str | Path) -> Path:
    """PNG of every run's equity curve with buy-and-hold and no-trade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, col in enumerate(report.equity.columns):
        style = {"buy-and-hold": dict(color="black", lw=1.6), "no-trade": dict(color="grey", lw=1.2, ls="--")}
        ax.plot(report.equity.index, report.equity[col], label=col, **style.get(col, dict(lw=1.0, color=f"C{i % 10}")))
    ax.set_ylabel("equity (USD)")
    ax.set_yscale("log")
    p = report.params
    ax.set_title(f"Strategy backtest, {p.get('coins')} coins, {p.get('start')} .. {p.get('end')}, "
                 f"{p.get('fee_bps'):g}+{p.get('slippage_bps'):g} bps per side")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
