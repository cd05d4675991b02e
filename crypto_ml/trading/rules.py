"""Trading rules: turn one prediction into "trade" or "store" (pure, no I/O).

:func:`decide` buys when the expected return over the horizon is above a threshold, sized to a fixed
order notional and capped by per-coin and total limits and by the cash, all at market value
(:mod:`crypto_ml.trading.risk`); sells (a long position, or short
when allowed) when it is below minus the threshold; and stores only otherwise, or whenever the kill
switch is on.

The signal can be made to respect costs and uncertainty:

- ``fee_bps`` and ``slippage_bps`` (basis points per side) are subtracted from the signal: a buy
  must clear the threshold after paying both sides of the round trip, a sell after one side;
- ``interval_level`` (e.g. 80) makes the rule use the prediction's interval of the horizon return
  instead of the point: buy only when the **lower** bound clears ``+threshold``, sell only when the
  **upper** bound is below ``-threshold``. A prediction without that interval is stored only.

A prediction whose model version has not earned the right to trade (champion / challenger,
:mod:`crypto_ml.evaluation.promotion`) never opens or grows a position on its signal: where the
rule would buy or sell, it stores with the reason given (``refusal``, e.g. ``"not promoted: MASE
1.03× naive; the rule would buy: ..."``). Trims back within the caps still happen (they reduce
risk, whatever the model). The kill switch comes first.

The DAG's ``decide`` task and the strategy backtest (:mod:`crypto_ml.evaluation.strategy`) call this same
function.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from crypto_ml.trading.risk import Account

#: Relative slack under which a remaining room or position counts as zero (float noise).
_EPS = 1e-9


@dataclass(frozen=True)
class TradingRules:
    """Limits of the trading rules; all notionals are in the quote currency (USD).

    Attributes
    ----------
    threshold
        Minimum absolute expected return over the horizon (0.02 = 2 %) to trade; strictly exceeded.
    order_notional
        Notional of one order (quantity = ``order_notional / last_close``).
    max_position_notional
        Largest market value of one coin's position (marked at the prediction's ``last_close``).
    max_total_notional
        Largest gross exposure of all positions together, at market value.
    capital
        What the book started with (its cash before any trade); None (default): equal to
        ``max_total_notional``. Buys never spend more than the cash (capital plus sales minus
        purchases and fees), see :mod:`crypto_ml.trading.risk`.
    allow_short
        Whether a sell signal without a long position opens (or grows) a short position.
    fee_bps, slippage_bps
        Trading fee and expected slippage per side, in basis points (10 = 0.1 %); the signal must
        clear the threshold net of them (a buy pays two sides, a sell one).
    interval_level
        None (default): trade on the point forecast's expected return. A level such as 80: trade
        only when that interval of the horizon return clears the threshold (lower bound for a
        buy, upper bound for a sell).
    """

    threshold: float = 0.02
    order_notional: float = 1000.0
    max_position_notional: float = 5000.0
    max_total_notional: float = 20000.0
    allow_short: bool = False
    fee_bps: float = 0.0
    slippage_bps: float = 0.0
    interval_level: float | None = None
    capital: float | None = None

    def __post_init__(self) -> None:
        _check_number("threshold", self.threshold, allow_zero=True)
        _check_number("order_notional", self.order_notional)
        _check_number("max_position_notional", self.max_position_notional)
        _check_number("max_total_notional", self.max_total_notional)
        _check_number("fee_bps", self.fee_bps, allow_zero=True)
        _check_number("slippage_bps", self.slippage_bps, allow_zero=True)
        if self.capital is not None:
            _check_number("capital", self.capital)
        if not isinstance(self.allow_short, bool):
            raise ValueError(f"TradingRules.allow_short must be a bool, got {self.allow_short!r}")
        if self.interval_level is not None:
            _check_number("interval_level", self.interval_level)
            if not self.interval_level < 100:
                raise ValueError(
                    f"TradingRules.interval_level must be None or a percentage between 0 and 100 "
                    f"(e.g. 80), got {self.interval_level!r}"
                )

    @property
    def book_capital(self) -> float:
        """The capital of the book: ``capital``, else ``max_total_notional``."""
        return float(self.capital if self.capital is not None else self.max_total_notional)

    @property
    def cost_per_side(self) -> float:
        """Fee plus slippage of one side, as a fraction (``(fee_bps + slippage_bps) / 10_000``)."""
        return (self.fee_bps + self.slippage_bps) / 10_000.0

    def describe(self) -> str:
        """Short label, e.g. ``"point>2%"`` or ``"80%-interval>2%, 15 bps"``."""
        head = "point" if self.interval_level is None else f"{self.interval_level:g}%-interval"
        text = f"{head}>{self.threshold * 100:g}%"
        bps = self.fee_bps + self.slippage_bps
        return f"{text}, {bps:g} bps" if bps else text


def _check_number(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value > 0 or (allow_zero and value == 0)):
        return
    need = "a finite number >= 0" if allow_zero else "a finite number > 0"
    raise ValueError(f"TradingRules.{name} must be {need}, got {value!r}")


@dataclass(frozen=True)
class Decision:
    """What to do with one prediction.

    ``action`` is ``"trade"`` (then ``side`` and a positive ``quantity`` are set) or ``"store"``
    (``side`` is None, ``quantity`` 0). ``price`` is the prediction's ``last_close``; ``reason`` is a
    short human-readable explanation.
    """

    action: Literal["trade", "store"]
    side: Literal["buy", "sell"] | None
    quantity: float
    price: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the decision (e.g. for XCom)."""
        return asdict(self)


def expected_return_of(prediction: dict[str, Any]) -> float:
    """The prediction's ``expected_return``, else ``values[-1] / last_close - 1``."""
    value = prediction.get("expected_return")
    if value is None:
        values = prediction.get("values") or []
        if not values:
            raise ValueError("prediction has neither expected_return nor values")
        from crypto_ml.engine.prediction import expected_return

        value = expected_return(values, prediction["last_close"])
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"prediction expected_return must be finite, got {value!r}")
    return value


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def return_interval_of(prediction: dict[str, Any], level: float) -> tuple[float, float] | None:
    """The ``level`` percent interval of the horizon return, ``(lower, upper)``, from the
    prediction's ``intervals`` (bounds of the last step over ``last_close``), or None when the
    prediction has no such interval."""
    intervals = prediction.get("intervals") or {}
    bounds = intervals.get(f"{float(level):g}")
    if bounds is None:
        bounds = intervals.get(level)
    if not bounds:
        return None
    price = float(prediction["last_close"])
    lower, upper = float(bounds["lower"][-1]) / price - 1.0, float(bounds["upper"][-1]) / price - 1.0
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(f"prediction's {level:g}% interval must be finite, got {lower!r}..{upper!r}")
    return lower, upper


def decide(
    *,
    prediction: dict[str, Any],
    account: Account | None,
    kill_switch: bool,
    rules: TradingRules,
    refusal: str | None = None,
) -> Decision:
    """Decide whether to trade on one prediction.

    Parameters
    ----------
    prediction
        Dict with at least ``coin``, ``last_close`` and ``expected_return`` (or ``values``); with
        ``rules.interval_level`` also ``intervals`` (the engine's result carries them).
    account
        The book (:class:`crypto_ml.trading.risk.Account`: cash, positions, marks), from the
        broker (:meth:`~crypto_ml.trading.brokers.Broker.account`) or the backtest; the
        prediction's coin is marked at its ``last_close``. Only None with the kill switch on.
    kill_switch
        When true, everything is stored only.
    rules
        The signal and the limits (:meth:`crypto_ml.trading.risk.RiskLimits.from_rules`).
    refusal
        None (default): the prediction's version may trade. Otherwise why it may not (its model
        version is not promoted): where the signal would trade, the prediction is stored with this
        reason and what the rule would have done; a trim within the caps is still made (of the
        trim's size only).

    Returns
    -------
    Decision
        With fees, slippage or an interval level the "expected return" below is the signal net
        of costs (buy: ``er - 2 * cost``, or the interval's lower bound minus that; sell:
        ``er + cost``, or the upper bound plus that; ``cost = (fee_bps + slippage_bps) / 1e4``).
        First, when prices moved the book past a cap (the coin's market value above the per-coin
        cap, the total above the total cap or the equity), the coin's share of the excess is sold
        (a trim, :func:`crypto_ml.trading.risk.trims`). Buy when expected return > threshold, sized
        ``order_notional / last_close`` and capped by :func:`crypto_ml.trading.risk.buy_room`
        (per-coin, total and cash room, at market value; "position limit reached" when there is
        none); sell ``min(position, order size)`` when expected return < -threshold and a long
        position exists (or a capped short when ``allow_short``); otherwise store, with a reason.

    Raises
    ------
    ValueError
        For a missing or non-positive ``last_close``, a non-finite expected return, or no account.
    """
    from crypto_ml.trading.risk import RiskLimits, buy_room, trims

    price = float(prediction.get("last_close") or 0.0)
    if not math.isfinite(price) or price <= 0:
        raise ValueError(
            f"prediction last_close must be a finite price > 0, got {prediction.get('last_close')!r}"
        )

    def store(reason: str) -> Decision:
        return Decision("store", None, 0.0, price, reason)

    if kill_switch:
        return store("kill switch on")
    if account is None:
        raise ValueError("decide needs the account (cash, positions, marks) unless the kill switch is on")
    coin = prediction.get("coin")
    if not coin:
        raise ValueError("prediction has no coin")
    account = account.with_marks({coin: price})
    limits = RiskLimits.from_rules(rules)
    position_qty = account.quantity(coin)
    er = expected_return_of(prediction)
    band = f"±{rules.threshold * 100:.1f}% threshold"
    cost = rules.cost_per_side
    trim = trims(account, limits).get(coin)
    if rules.interval_level is None:
        up, down, what = er, er, "expected return"
    else:
        bounds = return_interval_of(prediction, rules.interval_level)
        if bounds is None:
            if trim is not None:
                return Decision("trade", trim.side, trim.quantity, price, trim.reason)
            return store(f"no {rules.interval_level:g}% interval in the prediction (the rule needs one)")
        (up, down), what = bounds, f"{rules.interval_level:g}% interval"
    buy_signal, sell_signal = up - 2 * cost, down + cost
    net = f" net of {cost * 1e4:g} bps per side" if cost else ""
    if rules.interval_level is None:
        buy_label = sell_label = f"expected return{net}"
    else:
        buy_label, sell_label = f"{what} lower bound{net}", f"{what} upper bound{net}"
    what += net
    if trim is not None:
        qty, reason = trim.quantity, trim.reason + (f" [{'; '.join(account.notes)}]" if account.notes else "")
        if refusal is not None:
            return Decision("trade", trim.side, qty, price, f"{reason} (risk trim only; {refusal})")
        if trim.side == "sell" and sell_signal < -rules.threshold:
            signal_qty = min(position_qty, rules.order_notional / price)
            if signal_qty > qty:
                qty = signal_qty
                reason = (
                    f"{sell_label} {_pct(sell_signal)} below -{rules.threshold * 100:.1f}% threshold; "
                    f"{reason}"
                )
        return Decision("trade", trim.side, qty, price, reason)
    if buy_signal <= rules.threshold and sell_signal >= -rules.threshold:
        if rules.interval_level is None and not cost:
            return store(f"expected return {_pct(er)} within {band}")
        return store(
            f"expected return {_pct(er)}, {what} {_pct(buy_signal)}..{_pct(sell_signal)} "
            f"does not clear the {band}"
        )

    if buy_signal > rules.threshold:
        why = f"{buy_label} {_pct(buy_signal)} above +{rules.threshold * 100:.1f}% threshold"
        if refusal is not None:
            return store(f"{refusal}; the rule would buy: {why}")
        return _sized("buy", price, rules, buy_room(account, coin, limits), why, store, account)

    why = f"{sell_label} {_pct(sell_signal)} below -{rules.threshold * 100:.1f}% threshold"
    if refusal is not None:
        return store(f"{refusal}; the rule would sell: {why}")
    long_qty = position_qty if position_qty > _EPS * max(1.0, abs(position_qty)) else 0.0
    if long_qty > 0:
        qty = min(long_qty, rules.order_notional / price)
        reason = why if qty >= rules.order_notional / price else f"{why}; selling the whole position"
        return Decision("trade", "sell", qty, price, reason)
    if not rules.allow_short:
        return store(f"{why} but nothing to sell (shorting not allowed)")
    return _sized("sell", price, rules, buy_room(account, coin, limits, side="sell"), why, store, account)


def _sized(side, price, rules, room, why, store, account) -> Decision:
    room_notional, limit = room
    notional = min(rules.order_notional, room_notional)
    marks = f" [{'; '.join(account.notes)}]" if account.notes else ""  # how other coins were marked
    if notional <= _EPS * rules.order_notional:
        if limit in ("cash", "equity"):
            return store(f"{why} but no cash to buy with ({account.describe()}){marks}")
        return store(f"{why} but position limit reached ({limit} limit){marks}")
    reason = why
    if notional < rules.order_notional:
        reason += (
            f"; capped by the {limit} limit"
            if limit not in ("cash", "equity")
            else f"; capped by the cash ({account.cash:,.2f} USD)"
        ) + marks
    return Decision("trade", side, notional / price, price, reason)
