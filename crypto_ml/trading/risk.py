"""Risk: what the book may hold. One module for the paper ledger, the HTTP broker path and the
strategy backtest.

**Exposure is counted at market value**: a coin's exposure is ``|quantity| x its mark`` (the
prediction's ``last_close`` for the coin being decided, the latest close for the others), and the
total exposure is the sum over coins. Never at purchase price: a position bought at 100 that now
trades at 40 is 40 at risk, and the 60 lost is gone from the cash, so it cannot be bought again.

An :class:`Account` is the book at one moment: ``capital`` (what the book started with), ``cash``
(capital plus every sale minus every purchase and fee, so realised losses are in it), positions
and marks; ``equity = cash + sum(quantity x mark)``. :class:`RiskLimits` holds the caps; for every
decision and every fill they give:

- :func:`buy_room`: the notional a buy may add, the least of the per-coin room
  (``max_position - value``), the total room (``max_total - exposure``), the cash
  (``cash / (1 + buy_cost)``, fees and slippage included) and ``equity - exposure``; the binding
  limit is named;
- :func:`trims`: the orders that bring a book back within its caps after prices moved (a coin
  whose market value rose past its cap, a total above ``max_total`` or above equity), largest
  positions first;
- :func:`check_order`: why an order may not be filled (None when it may); an order that only
  reduces a position is always allowed;
- :func:`violations`: what is wrong with a book (negative cash or equity, a cap exceeded).

Long-only (the default, no shorts), the cash never goes below zero and so neither does equity,
whatever prices do. A short can lose more than the equity on one gap up (the price has no upper
bound); :func:`trims` buys it back to the caps at every decision, but no cap can prevent a gap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crypto_ml.trading.rules import TradingRules

#: Capital of a book when the rules name none (the default ``max_total_notional``).
DEFAULT_CAPITAL = 20000.0
#: Relative slack under which an amount counts as zero (float noise).
EPS = 1e-9


def _finite(name: str, value: Any, *, positive: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        raise ValueError(f"{name} must be a finite number{' > 0' if positive else ''}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RiskLimits:
    """The caps of one book, in USD at market value.

    ``capital``: what the book started with (cash before any trade). ``max_position``: largest
    market value of one coin's position (long or short). ``max_total``: largest total exposure.
    """

    capital: float = DEFAULT_CAPITAL
    max_position: float = 5000.0
    max_total: float = DEFAULT_CAPITAL

    def __post_init__(self) -> None:
        for name in ("capital", "max_position", "max_total"):
            _finite(f"RiskLimits.{name}", getattr(self, name), positive=True)

    @classmethod
    def from_rules(cls, rules: TradingRules) -> RiskLimits:
        """The limits of :class:`~crypto_ml.trading.rules.TradingRules` (capital
        ``rules.capital``, else ``max_total_notional``)."""
        return cls(rules.book_capital, rules.max_position_notional, rules.max_total_notional)


@dataclass(frozen=True)
class Account:
    """The book at one moment (see the module docs).

    ``buy_cost``: execution cost of a buy per USD of notional at the mark (fee and slippage, e.g.
    ``(1 + slippage) * (1 + fee) - 1``), reserved from the cash before a buy. ``notes``: how marks
    that are not a close that day were chosen (e.g. a coin marked at its last fill), for reasons.
    """

    capital: float
    cash: float
    positions: Mapping[str, float] = field(default_factory=dict)
    marks: Mapping[str, float] = field(default_factory=dict)
    buy_cost: float = 0.0
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _finite("Account.capital", self.capital, positive=True)
        _finite("Account.cash", self.cash)
        if _finite("Account.buy_cost", self.buy_cost) < 0:
            raise ValueError(f"Account.buy_cost must be >= 0, got {self.buy_cost!r}")
        positions = {c: _finite(f"position of {c!r}", float(q)) for c, q in self.positions.items()}
        positions = {c: q for c, q in positions.items() if q != 0.0}
        marks = {c: float(m) for c, m in self.marks.items()}
        for coin, mark in marks.items():
            _finite(f"mark of {coin!r}", mark, positive=True)
        missing = sorted(set(positions) - set(marks))
        if missing:
            raise ValueError(
                f"no mark for the held coin(s) {', '.join(map(repr, missing))}: "
                "exposure is counted at market value"
            )
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "marks", marks)

    def quantity(self, coin: str) -> float:
        return self.positions.get(coin, 0.0)

    def value(self, coin: str) -> float:
        """Signed market value of ``coin`` (negative for a short)."""
        qty = self.positions.get(coin, 0.0)
        return qty * self.marks[coin] if qty else 0.0

    @property
    def exposure(self) -> float:
        """Gross exposure at market value: ``sum(|quantity| x mark)``."""
        return sum(abs(self.value(c)) for c in self.positions)

    @property
    def equity(self) -> float:
        """``cash + sum(quantity x mark)``."""
        return self.cash + sum(self.value(c) for c in self.positions)

    def with_marks(self, marks: Mapping[str, float]) -> Account:
        return replace(self, marks={**self.marks, **marks})

    def after_fill(self, coin: str, side: str, quantity: float, price: float, fee: float = 0.0) -> Account:
        """The book after ``side`` ``quantity`` of ``coin`` filled at ``price`` (``fee`` in USD);
        the coin keeps its mark (marked at ``price`` when it had none)."""
        signed = quantity if side == "buy" else -quantity
        positions = dict(self.positions)
        positions[coin] = positions.get(coin, 0.0) + signed
        if abs(positions[coin]) <= EPS * max(1.0, abs(quantity)):
            positions[coin] = 0.0
        return replace(
            self,
            cash=self.cash - signed * price - fee,
            positions=positions,
            marks={coin: price, **self.marks},
        )

    def describe(self) -> str:
        return (
            f"cash {self.cash:,.2f}, exposure {self.exposure:,.2f} at market, equity {self.equity:,.2f} "
            f"(capital {self.capital:,.0f})"
        )


def buy_room(account: Account, coin: str, limits: RiskLimits, *, side: str = "buy") -> tuple[float, str]:
    """``(notional, binding limit)``: how much a ``side`` order in ``coin`` may add, at the coin's
    mark (``side="sell"`` for a short; long-only books never ask). The limit is ``"per-coin"``
    (``max_position`` minus the coin's market value), ``"total"`` (``max_total`` minus the
    exposure), ``"cash"`` (a buy: ``cash / (1 + buy_cost)``) or ``"equity"`` (``equity`` minus the
    exposure), the first of them on a tie."""
    value = account.value(coin)
    rooms = [
        ("per-coin", limits.max_position - (value if side == "buy" else -value)),
        ("total", limits.max_total - account.exposure),
        ("cash", account.cash / (1.0 + account.buy_cost) if side == "buy" else math.inf),
        ("equity", account.equity - account.exposure),
    ]
    name, room = min(rooms, key=lambda r: r[1])
    return max(room, 0.0), name


@dataclass(frozen=True)
class Trim:
    """An order that brings the book back within a cap: ``side`` ``quantity`` of ``coin``."""

    coin: str
    side: str
    quantity: float
    reason: str


def trims(account: Account, limits: RiskLimits) -> dict[str, Trim]:
    """Per coin, the order that brings the book within its caps at the current marks: first each
    coin to its per-coin cap, then the total to ``min(max_total, equity)`` taken from the largest
    positions first. Empty when the book is within its caps."""
    out: dict[str, float] = {}
    why: dict[str, str] = {}
    values = {c: abs(account.value(c)) for c in account.positions}
    for coin, v in values.items():
        if v > limits.max_position * (1 + EPS):
            out[coin] = v - limits.max_position
            why[coin] = f"{v:,.0f} USD at market above the {limits.max_position:,.0f} USD per-coin cap"
    cap = min(limits.max_total, max(account.equity, 0.0))
    left = sum(values.values()) - sum(out.values())
    if left > cap * (1 + EPS) + EPS:
        excess = left - cap
        what = f"total {left:,.0f} USD at market above the " + (
            f"{limits.max_total:,.0f} USD total cap"
            if cap == limits.max_total
            else f"equity {account.equity:,.0f} USD"
        )
        for coin in sorted(values, key=lambda c: (-(values[c] - out.get(c, 0.0)), c)):
            if excess <= 0:
                break
            take = min(values[coin] - out.get(coin, 0.0), excess)
            if take > 0:
                out[coin] = out.get(coin, 0.0) + take
                why[coin] = "; ".join(filter(None, [why.get(coin), what]))
                excess -= take
    result = {}
    for coin, notional in out.items():
        qty = min(notional / account.marks[coin], abs(account.quantity(coin)))
        side = "sell" if account.quantity(coin) > 0 else "buy"
        result[coin] = Trim(coin, side, qty, f"trim {qty:g} {coin}: {why[coin]}")
    return result


def check_order(
    account: Account,
    coin: str,
    side: str,
    quantity: float,
    price: float,
    limits: RiskLimits,
    *,
    fee: float = 0.0,
) -> str | None:
    """Why ``side`` ``quantity`` of ``coin`` at ``price`` may not be filled on ``account`` (None
    when it may); the coin is valued at its mark in ``account`` (at ``price`` when it has none). An
    order that only reduces a position (towards zero, not past it) is always allowed; one that adds
    exposure must keep the cash, the coin's market value and the total within the limits."""
    held = account.quantity(coin)
    signed = quantity if side == "buy" else -quantity
    if held and (held > 0) != (signed > 0) and abs(signed) <= abs(held) * (1 + EPS):
        return None
    before = account if coin in account.marks else account.with_marks({coin: price})
    after = before.after_fill(coin, side, quantity, price, fee)
    tol = EPS * max(1.0, quantity * price)
    if side == "buy" and after.cash < -tol:
        return (
            f"{side} {quantity:g} {coin} at {price:g} costs {quantity * price + fee:,.2f} USD "
            "but the cash is "
            f"{before.cash:,.2f} USD ({before.describe()})"
        )
    value = abs(after.value(coin))
    if value > limits.max_position + tol:
        return (
            f"{side} {quantity:g} {coin} at {price:g} takes {coin} to {value:,.2f} USD at market, above the "
            f"{limits.max_position:,.0f} USD per-coin cap"
        )
    cap = min(limits.max_total, after.equity)
    if after.exposure > cap + tol and after.exposure > before.exposure:
        return (
            f"{side} {quantity:g} {coin} at {price:g} takes the exposure to {after.exposure:,.2f} USD "
            "at market, "
            f"above {'the total cap' if cap == limits.max_total else 'the equity'} ({cap:,.2f} USD)"
        )
    return None


def violations(account: Account, limits: RiskLimits, *, rel: float = 1e-9) -> list[str]:
    """What is wrong with the book at its marks: negative cash (long-only books), negative
    equity, a coin above its cap, the total above ``max_total`` or above equity."""
    tol = rel * limits.capital
    out = []
    if account.equity < -tol:
        out.append(f"equity {account.equity:,.2f} USD below zero")
    if account.cash < -tol and all(q > 0 for q in account.positions.values()):
        out.append(f"cash {account.cash:,.2f} USD below zero")
    for coin in account.positions:
        value = abs(account.value(coin))
        if value > limits.max_position + tol:
            out.append(
                f"{coin}: {value:,.2f} USD at market above the {limits.max_position:,.0f} USD per-coin cap"
            )
    if account.exposure > limits.max_total + tol:
        out.append(f"exposure {account.exposure:,.2f} USD above the {limits.max_total:,.0f} USD total cap")
    if account.exposure > max(account.equity, 0.0) + tol:
        out.append(f"exposure {account.exposure:,.2f} USD above the equity {account.equity:,.2f} USD")
    return out


# -- books from the ledgers -----------------------------------------------------------------------
def stored_marks(
    coins: Iterable[str], *, as_of: Any, fallback: Mapping[str, float], url: str | None = None
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Marks of ``coins``: each coin's latest stored close on or before ``as_of`` (the project
    database's ``prices``); a coin without one is marked at ``fallback[coin]`` (its last fill) and
    a note says so. A coin in neither raises a ``ValueError`` naming it."""
    from sqlalchemy import func, select

    from crypto_ml.storage.db import get_engine
    from crypto_ml.storage.models import Price
    from crypto_ml.utils.dates import as_date

    coins = sorted(set(coins))
    if not coins:
        return {}, ()
    day = as_date(as_of, what="as_of") if as_of is not None else None
    latest = select(Price.coin, func.max(Price.date).label("date")).where(Price.coin.in_(coins))
    if day is not None:
        latest = latest.where(Price.date <= day)
    latest = latest.group_by(Price.coin).subquery()
    stmt = select(Price.coin, Price.date, Price.close).join(
        latest, (Price.coin == latest.c.coin) & (Price.date == latest.c.date)
    )
    with get_engine(url).connect() as conn:
        rows = {coin: (date, close) for coin, date, close in conn.execute(stmt)}
    marks, notes = {}, []
    for coin in coins:
        date, close = rows.get(coin, (None, None))
        if close is not None and math.isfinite(close) and close > 0:
            marks[coin] = float(close)
            if day is not None and date != day:
                notes.append(f"{coin} marked at its {date} close")
        elif coin in fallback:
            marks[coin] = float(fallback[coin])
            notes.append(f"{coin} marked at its last fill {marks[coin]:g} (no stored close)")
        else:
            raise ValueError(f"{coin}: held but no stored close and no fill price to mark it at")
    return marks, tuple(notes)


def paper_account(
    session: Any,
    capital: float,
    *,
    marks: Mapping[str, float],
    as_of: Any = None,
    url: str | None = None,
    marks_from_db: bool = True,
) -> Account:
    """The paper ledger's book in ``session``: cash = capital + sales - purchases (the paper
    broker charges no fee), positions from ``paper_positions``; coins not in ``marks`` are marked
    by :func:`stored_marks` (or at their last fill when ``marks_from_db`` is false)."""
    from sqlalchemy import case, func, select

    from crypto_ml.storage.models import PaperFill, PaperOrder, PaperPosition

    signed = case(
        (PaperOrder.side == "buy", PaperFill.quantity * PaperFill.price),
        else_=-PaperFill.quantity * PaperFill.price,
    )
    spent = session.execute(
        select(func.sum(signed))
        .select_from(PaperFill)
        .join(PaperOrder, PaperOrder.idempotency_key == PaperFill.idempotency_key)
    ).scalar()
    positions = {
        c: float(q) for c, q in session.execute(select(PaperPosition.coin, PaperPosition.quantity)) if q
    }
    need = set(positions) - set(marks)
    fills: dict[str, float] = {}
    if need:
        last = (
            select(PaperOrder.coin, PaperFill.price)
            .join(PaperOrder, PaperOrder.idempotency_key == PaperFill.idempotency_key)
            .where(PaperOrder.coin.in_(sorted(need)))
            .order_by(PaperFill.id)
        )
        fills = {coin: float(price) for coin, price in session.execute(last)}
    if need and marks_from_db:
        more, notes = stored_marks(need, as_of=as_of, fallback=fills, url=url)
    else:
        more, notes = (
            {c: fills[c] for c in need},
            tuple(f"{c} marked at its last fill {fills[c]:g}" for c in sorted(need)),
        )
    return Account(capital, capital - float(spent or 0.0), positions, {**more, **marks}, notes=notes)


def trade_request_account(
    requests: Iterable[Mapping[str, Any]],
    capital: float,
    *,
    broker: str,
    dry_run: bool,
    marks: Mapping[str, float],
    positions: Mapping[str, float] | None = None,
    as_of: Any = None,
    url: str | None = None,
) -> Account:
    """The book of an order endpoint from the project's recorded trade requests of ``broker``.

    Live: cash moves by every fill (``filled_qty x fill_price`` of the endpoint's answer), and an
    accepted but unfilled buy is reserved at its price (an accepted sale adds nothing until it
    fills); positions are the endpoint's (``positions``). Dry run: every order that would have been
    sent counts as filled at its price, so the limits act as they would live.
    """
    cash = float(capital)
    derived: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in requests:
        if r.get("broker") != broker:
            continue
        sign = 1.0 if r["side"] == "buy" else -1.0
        status, resp = r.get("status"), r.get("response") or {}
        if dry_run:
            qty, price = (float(r["quantity"]), float(r["price"])) if status == "dry_run" else (0.0, 0.0)
        elif status == "filled" or (status == "accepted" and float(resp.get("filled_qty") or 0.0) > 0):
            qty = float(resp.get("filled_qty") or 0.0)
            price = float(resp.get("fill_price") or r["price"])
            if status == "accepted" and sign > 0:
                cash -= (float(r["quantity"]) - qty) * float(r["price"])  # the unfilled rest, reserved
        elif status == "accepted" and sign > 0:
            cash -= float(r["quantity"]) * float(r["price"])
            qty, price = 0.0, 0.0
        else:
            qty, price = 0.0, 0.0
        if qty:
            cash -= sign * qty * price
            derived[r["coin"]] = derived.get(r["coin"], 0.0) + sign * qty
            last[r["coin"]] = price
    held = dict(positions) if positions is not None and not dry_run else derived
    held = {c: q for c, q in held.items() if abs(q) > EPS}
    need = set(held) - set(marks)
    more, notes = stored_marks(need, as_of=as_of, fallback=last, url=url) if need else ({}, ())
    return Account(capital, cash, held, {**more, **marks}, notes=notes)
