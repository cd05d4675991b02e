"""The strategy simulation: replay the trading rule day by day on a paper ledger.

Each day's predictions go through :func:`crypto_ml.trading.rules.decide`, the function the DAG's
``decide`` task calls, with the position and gross notional of a
:class:`~crypto_ml.trading.brokers.PaperBroker` on a throw-away SQLite database (the paper ledger's
own code). A trade is placed on that ledger at the day's close moved against us by the slippage,
the fee is paid in cash, and every position is marked to market at each day's close.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crypto_ml.evaluation.forecasts import prediction_of
from crypto_ml.trading.rules import TradingRules, decide

if TYPE_CHECKING:
    from crypto_ml.trading.risk import Account, RiskLimits

#: Execution costs of the backtest, basis points per side, unless given.
DEFAULT_FEE_BPS = 10.0
DEFAULT_SLIPPAGE_BPS = 5.0

ORDER_COLUMNS = [
    "model",
    "rule",
    "date",
    "coin",
    "side",
    "quantity",
    "last_close",
    "price",
    "notional",
    "fee",
    "status",
    "reason",
    "expected_return",
    "position_after",
]


@dataclass
class Book:
    """Cash, cost basis and round trips of one coin (the positions themselves are the ledger's)."""

    cash: float = 0.0
    qty: float = 0.0
    cost: float = 0.0  # cost basis of the open quantity, fees included
    fees: float = 0.0
    traded: float = 0.0
    trades: int = 0
    wins: int = 0
    round_trips: int = 0

    def fill(self, side: str, qty: float, price: float, fee: float) -> None:
        """Book a filled order: cash, cost basis, and a round trip when (part of) a long closes."""
        notional = qty * price
        self.fees += fee
        self.traded += notional
        self.trades += 1
        if side == "buy":
            self.cash -= notional + fee
            self.cost += notional + fee
            self.qty += qty
            return
        self.cash += notional - fee
        if self.qty > 0:  # closing (part of) a long: a round trip
            share = min(qty, self.qty) / self.qty
            basis = self.cost * share
            self.round_trips += 1
            self.wins += int(notional - fee > basis)
            self.cost -= basis
        self.qty -= qty
        if abs(self.qty) < 1e-12:
            self.qty, self.cost = 0.0, 0.0


class _Replay:
    """The state of one model x rule replay: the books per coin, the orders, the daily curves and
    the day's marks (``today``, which the paper broker reads)."""

    def __init__(
        self,
        coins: Iterable[str],
        rules: TradingRules,
        limits: RiskLimits,
        *,
        model: str,
        rule: str,
        fee_bps: float,
        slippage_bps: float,
    ) -> None:
        self.rules, self.limits, self.model, self.rule = rules, limits, model, rule
        self.fee, self.slip = fee_bps / 1e4, slippage_bps / 1e4
        self.capital = limits.capital
        self.buy_cost = (1 + self.slip) * (1 + self.fee) - 1
        self.books = {coin: Book() for coin in coins}
        self.orders: list[dict[str, Any]] = []
        self.equity: list[float] = []
        self.coin_pnl: list[dict[str, float]] = []
        self.risk_rows: list[dict[str, float]] = []
        self.today: dict[str, float] = {}
        self.broker: Any = None

    def account(self) -> Account:
        from crypto_ml.trading.risk import Account

        held = {c: b.qty for c, b in self.books.items() if b.qty}
        cash = self.capital + sum(b.cash for b in self.books.values())
        return Account(self.capital, cash, held, self.today, buy_cost=self.buy_cost)

    def place(
        self,
        day: pd.Timestamp,
        coin: str,
        side: str,
        quantity: float,
        last_close: float,
        reason: str,
        expected_return: float,
        tag: str = "",
    ) -> None:
        """Place one order on the ledger at the close moved by the slippage; book it when filled."""
        from crypto_ml.trading.brokers import OrderRequest

        price = last_close * (1 + self.slip if side == "buy" else 1 - self.slip)
        order_id = f"bt-{self.model}-{self.rule}-{coin}-{day.date()}{tag}"[:128]
        result = self.broker.place_order(OrderRequest(order_id, coin, side, quantity, price, day.date()))
        notional = quantity * price
        paid = notional * self.fee if result.status == "filled" else 0.0
        book = self.books[coin]
        if result.status == "filled":
            book.fill(side, quantity, price, paid)
        self.orders.append(
            {
                "model": self.model,
                "rule": self.rule,
                "date": day.date(),
                "coin": coin,
                "side": side,
                "quantity": quantity,
                "last_close": last_close,
                "price": price,
                "notional": notional,
                "fee": paid,
                "status": result.status,
                "reason": result.reason or reason,
                "expected_return": expected_return,
                "position_after": result.raw.get("position", book.qty),
            }
        )

    def trade_day(
        self, day: pd.Timestamp, close: pd.Series, rows: Iterable[Any], keys: list[str], horizon: int
    ) -> None:
        """One day: each forecast's decision, then the trims back within the caps, then the marks."""
        from crypto_ml.trading.risk import trims

        self.today = {c: float(v) for c, v in close.items() if math.isfinite(v)}
        for row in sorted(rows, key=lambda r: r.coin):
            prediction = prediction_of(row, keys, self.model, horizon)
            decision = decide(
                prediction=prediction, account=self.account(), kill_switch=False, rules=self.rules
            )
            if decision.action == "trade":
                self.place(
                    day,
                    row.coin,
                    decision.side,
                    decision.quantity,
                    row.last_close,
                    decision.reason,
                    row.expected_return,
                )
        # Coins held without a forecast today are brought within the caps too.
        for coin, trim in sorted(trims(self.account(), self.limits).items()):
            self.place(
                day, coin, trim.side, trim.quantity, self.today[coin], trim.reason, float("nan"), "-trim"
            )
        self.close_day(day, close)

    def close_day(self, day: pd.Timestamp, close: pd.Series) -> None:
        """Check the book at the close (a ``RuntimeError`` naming the day when a cap is exceeded)
        and record the day's risk, per-coin P&L and equity."""
        from crypto_ml.trading.risk import violations

        book = self.account()
        wrong = violations(book, self.limits, rel=1e-6)
        if wrong:
            raise RuntimeError(f"{self.model}/{self.rule} on {day.date()}: " + "; ".join(wrong))
        values = [abs(book.value(c)) for c in book.positions]
        self.risk_rows.append(
            {
                "cash": book.cash,
                "exposure": book.exposure,
                "equity": book.equity,
                "max_coin": max(values, default=0.0),
            }
        )
        pnl = {c: b.cash + (b.qty * float(close[c]) if b.qty else 0.0) for c, b in self.books.items()}
        self.coin_pnl.append(pnl)
        self.equity.append(self.capital + sum(pnl.values()))

    def check_ledger(self, ledger: Mapping[str, float]) -> None:
        """The ledger and the books must agree."""
        for coin, book in self.books.items():
            if not math.isclose(ledger.get(coin, 0.0), book.qty, rel_tol=1e-6, abs_tol=1e-9):
                held = ledger.get(coin, 0.0)
                raise RuntimeError(f"{coin}: ledger holds {held}, the backtest's book {book.qty}")

    def result(self, days: pd.Index) -> dict[str, Any]:
        return {
            "orders": pd.DataFrame(self.orders, columns=ORDER_COLUMNS),
            "equity": pd.Series(self.equity, index=days, name=f"{self.model}/{self.rule}"),
            "coin_pnl": pd.DataFrame(self.coin_pnl, index=days),
            "risk": pd.DataFrame(self.risk_rows, index=days),
            "books": self.books,
            "capital": self.capital,
        }


def _rows_by_day(forecasts: Mapping[str, pd.DataFrame]) -> dict[pd.Timestamp, list[Any]]:
    by_day: dict[pd.Timestamp, list[Any]] = {}
    for frame in forecasts.values():
        for row in frame.itertuples(index=False):
            by_day.setdefault(row.date, []).append(row)
    return by_day


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

    :param forecasts: per coin, :func:`~crypto_ml.evaluation.forecasts.forecast_days` output.
    :param prices: closes, one column per coin, indexed by day (the marks; forward-filled).
    :param url: the ledger's database (default: a fresh SQLite file in a temporary folder, removed).
    """
    from crypto_ml.storage import dispose_engine, migrate
    from crypto_ml.trading.brokers import PaperBroker
    from crypto_ml.trading.risk import RiskLimits

    limits = RiskLimits.from_rules(rules)
    replay = _Replay(
        prices.columns, rules, limits, model=model, rule=rule, fee_bps=fee_bps, slippage_bps=slippage_bps
    )
    columns = {c for f in forecasts.values() for c in f.columns}
    keys = sorted(c[len("lower_") :] for c in columns if c.startswith("lower_"))
    by_day = _rows_by_day(forecasts)
    marks = prices.sort_index().ffill()
    with tempfile.TemporaryDirectory(prefix="crypto-ml-strategy-") as tmp:
        db = url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        migrate(db)
        replay.broker = PaperBroker(
            db, allow_short=rules.allow_short, limits=limits, marks=lambda: replay.today
        )
        try:
            for day in marks.index:
                replay.trade_day(day, marks.loc[day], by_day.get(day, ()), keys, horizon)
            ledger = replay.broker.positions()
        finally:
            dispose_engine(db)
    replay.check_ledger(ledger)
    return replay.result(marks.index)


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
