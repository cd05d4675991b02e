"""Trading rules: table-driven, pure (no database, no broker)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from crypto_ml.trading.risk import Account
from crypto_ml.trading.rules import Decision, TradingRules, decide

RULES = TradingRules()  # threshold 2 %, order 1000, per coin 5000, total 20000, no shorts


def book(
    position: float,
    total: float,
    *,
    coin: str = "btc",
    price: float = 100.0,
    rules: TradingRules = RULES,
) -> Account:
    """A book holding ``position`` of ``coin`` at ``price`` and other coins worth the rest of
    ``total`` (exposure at market value), bought at today's marks (cash = capital - their value)."""
    other = (total - abs(position) * price) / 50.0
    positions = {coin: position, "other": other}
    marks = {coin: price, "other": 50.0}
    cash = rules.book_capital - position * price - other * 50.0
    return Account(rules.book_capital, cash, positions, marks)


def pred(er: float, last_close: float = 100.0) -> dict:
    return {
        "coin": "btc",
        "as_of": "2024-01-01",
        "model": "linear",
        "version": 1,
        "horizon": 7,
        "values": [last_close * (1 + er)],
        "last_close": last_close,
        "expected_return": er,
    }


CASES = [
    # id, expected_return, position_qty, total_notional, kill, rules, action, side, qty, reason substring
    (
        "buy full order",
        0.05,
        0,
        0,
        False,
        RULES,
        "trade",
        "buy",
        10.0,
        "expected return +5.0% above +2.0% threshold",
    ),
    ("kill switch wins over buy", 0.05, 0, 0, True, RULES, "store", None, 0.0, "kill switch on"),
    ("kill switch wins over sell", -0.05, 5, 0, True, RULES, "store", None, 0.0, "kill switch on"),
    (
        "inside band",
        0.008,
        0,
        0,
        False,
        RULES,
        "store",
        None,
        0.0,
        "expected return +0.8% within ±2.0% threshold",
    ),
    ("negative inside band", -0.019, 3, 0, False, RULES, "store", None, 0.0, "within ±2.0% threshold"),
    ("exactly at threshold is no trade", 0.02, 0, 0, False, RULES, "store", None, 0.0, "within"),
    ("exactly at -threshold is no trade", -0.02, 3, 0, False, RULES, "store", None, 0.0, "within"),
    ("per-coin cap", 0.05, 45, 4500, False, RULES, "trade", "buy", 5.0, "capped by the per-coin limit"),
    (
        "per-coin full",
        0.05,
        50,
        5000,
        False,
        RULES,
        "store",
        None,
        0.0,
        "position limit reached (per-coin limit)",
    ),
    (
        "per-coin over at market is trimmed",
        0.05,
        60,
        6000,
        False,
        RULES,
        "trade",
        "sell",
        10.0,
        "trim 10 btc: 6,000 USD at market above the 5,000 USD per-coin cap",
    ),
    ("total cap", 0.05, 0, 19800, False, RULES, "trade", "buy", 2.0, "capped by the total limit"),
    ("total full", 0.05, 0, 20000, False, RULES, "store", None, 0.0, "position limit reached (total limit)"),
    (
        "sell order size",
        -0.05,
        30,
        3000,
        False,
        RULES,
        "trade",
        "sell",
        10.0,
        "expected return -5.0% below -2.0% threshold",
    ),
    (
        "sell whole small position",
        -0.05,
        4,
        400,
        False,
        RULES,
        "trade",
        "sell",
        4.0,
        "selling the whole position",
    ),
    ("nothing to sell", -0.05, 0, 0, False, RULES, "store", None, 0.0, "nothing to sell"),
    ("short position, no shorts", -0.05, -3, 300, False, RULES, "store", None, 0.0, "nothing to sell"),
    (
        "short allowed",
        -0.05,
        0,
        0,
        False,
        TradingRules(allow_short=True),
        "trade",
        "sell",
        10.0,
        "below -2.0%",
    ),
    (
        "short capped per coin",
        -0.05,
        -45,
        4500,
        False,
        TradingRules(allow_short=True),
        "trade",
        "sell",
        5.0,
        "per-coin",
    ),
    (
        "short full",
        -0.05,
        -50,
        5000,
        False,
        TradingRules(allow_short=True),
        "store",
        None,
        0.0,
        "position limit reached",
    ),
    (
        "buy covers a short",
        0.05,
        -10,
        1000,
        False,
        TradingRules(allow_short=True),
        "trade",
        "buy",
        10.0,
        "above",
    ),
    (
        "zero threshold trades any move",
        0.0001,
        0,
        0,
        False,
        TradingRules(threshold=0),
        "trade",
        "buy",
        10.0,
        "above",
    ),
    (
        "custom threshold",
        0.05,
        0,
        0,
        False,
        TradingRules(threshold=0.1),
        "store",
        None,
        0.0,
        "within ±10.0% threshold",
    ),
]


@pytest.mark.parametrize(
    "er, position, total, kill, rules, action, side, qty, reason",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(er, position, total, kill, rules, action, side, qty, reason):
    d = decide(prediction=pred(er), account=book(position, total), kill_switch=kill, rules=rules)
    assert isinstance(d, Decision)
    assert (d.action, d.side) == (action, side)
    assert math.isclose(d.quantity, qty, rel_tol=1e-12, abs_tol=1e-12)
    assert d.price == 100.0
    assert reason in d.reason
    assert d.to_dict() == {
        "action": action,
        "side": side,
        "quantity": d.quantity,
        "price": 100.0,
        "reason": d.reason,
    }


def test_sizing_uses_last_close():
    d = decide(prediction=pred(0.05, last_close=40000.0), account=book(0, 0), kill_switch=False, rules=RULES)
    assert d.quantity == pytest.approx(0.025)
    assert d.price == 40000.0


def test_expected_return_from_values_when_missing():
    p = pred(0.0)
    del p["expected_return"]
    p["values"] = [101.0, 103.0]
    d = decide(prediction=p, account=book(0, 0), kill_switch=False, rules=RULES)
    assert (d.action, d.side) == ("trade", "buy")
    assert "+3.0%" in d.reason


def test_float_noise_at_the_limit_is_no_room():
    # 5 orders of 1000/3 units at 300 fill the coin exactly, up to float rounding.
    qty = sum([1000 / 300] * 5)
    d = decide(
        prediction=pred(0.05, last_close=300.0),
        account=book(qty, 5000, price=300.0),
        kill_switch=False,
        rules=RULES,
    )
    assert d.action == "store" and "position limit reached" in d.reason


def test_kill_switch_does_not_need_a_valid_return():
    p = pred(0.0)
    p["expected_return"] = float("nan")
    d = decide(prediction=p, account=book(0, 0), kill_switch=True, rules=RULES)
    assert d.reason == "kill switch on"


@pytest.mark.parametrize(
    "bad",
    [
        {"last_close": 0},
        {"last_close": None},
        {"last_close": float("inf")},
        {"expected_return": float("nan")},
    ],
)
def test_decide_rejects_bad_predictions(bad):
    p = {**pred(0.05), **bad}
    with pytest.raises(ValueError):
        decide(prediction=p, account=book(0, 0), kill_switch=False, rules=RULES)


def test_decide_rejects_bad_positions():
    with pytest.raises(ValueError, match="position of 'btc' must be a finite number"):
        Account(20000.0, 20000.0, {"btc": float("nan")}, {"btc": 100.0})
    with pytest.raises(ValueError, match="no mark for the held coin"):
        Account(20000.0, 15000.0, {"eth": 10.0}, {"btc": 100.0})
    with pytest.raises(ValueError, match="needs the account"):
        decide(prediction=pred(0.05), account=None, kill_switch=False, rules=RULES)


@pytest.mark.parametrize(
    "field, value",
    [
        ("threshold", -0.01),
        ("threshold", float("nan")),
        ("order_notional", 0),
        ("order_notional", -5),
        ("max_position_notional", 0),
        ("max_total_notional", float("inf")),
        ("order_notional", "1000"),
        ("threshold", True),
        ("allow_short", 1),
    ],
)
def test_rules_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"TradingRules\.{field}"):
        TradingRules(**{field: value})


def test_rules_are_frozen_and_defaults():
    r = TradingRules()
    assert (r.threshold, r.order_notional, r.max_position_notional, r.max_total_notional, r.allow_short) == (
        0.02,
        1000.0,
        5000.0,
        20000.0,
        False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.threshold = 0.5  # type: ignore[misc]
