"""The rule with costs and intervals: the same decide() the DAG's decide task and the backtest call."""

from __future__ import annotations

import pytest

from crypto_ml.trading.risk import Account
from crypto_ml.trading.rules import TradingRules, decide, return_interval_of


def book(
    position: float,
    total: float,
    *,
    coin: str = "bitcoin",
    price: float = 100.0,
    rules: TradingRules = TradingRules(),  # noqa: B008 - frozen dataclass of floats, shared safely
) -> Account:
    """A book holding ``position`` of ``coin`` at ``price`` and other coins worth the rest of
    ``total`` (exposure at market value), bought at today's marks (cash = capital - their value)."""
    other = (total - abs(position) * price) / 50.0
    positions = {coin: position, "other": other}
    marks = {coin: price, "other": 50.0}
    cash = rules.book_capital - position * price - other * 50.0
    return Account(rules.book_capital, cash, positions, marks)


def pred(
    er: float,
    lower: float | None = None,
    upper: float | None = None,
    level: str = "80",
    last_close: float = 100.0,
) -> dict:
    p = {
        "coin": "bitcoin",
        "last_close": last_close,
        "expected_return": er,
        "values": [last_close * (1 + er)],
    }
    if lower is not None:
        p["intervals"] = {level: {"lower": [last_close * (1 + lower)], "upper": [last_close * (1 + upper)]}}
    return p


def run(p, rules, position=0.0, total=0.0):
    return decide(prediction=p, account=book(position, total), kill_switch=False, rules=rules)


INTERVAL = TradingRules(interval_level=80)


@pytest.mark.parametrize(
    "case, prediction, position, action, side, reason",
    [
        (
            "lower bound clears: buy",
            pred(0.08, 0.03, 0.12),
            0,
            "trade",
            "buy",
            "80% interval lower bound +3.0% above",
        ),
        ("point clears, interval does not", pred(0.08, -0.01, 0.15), 0, "store", None, "does not clear"),
        (
            "upper bound below -threshold: sell the long",
            pred(-0.08, -0.12, -0.03),
            10,
            "trade",
            "sell",
            "upper bound -3.0% below",
        ),
        (
            "upper bound below but nothing held",
            pred(-0.08, -0.12, -0.03),
            0,
            "store",
            None,
            "nothing to sell",
        ),
        ("no interval in the prediction", pred(0.08), 0, "store", None, "no 80% interval"),
        ("another level only", pred(0.08, 0.03, 0.12, level="95"), 0, "store", None, "no 80% interval"),
    ],
)
def test_interval_rule(case, prediction, position, action, side, reason):
    d = run(prediction, INTERVAL, position=position, total=position * 100.0)
    assert (d.action, d.side) == (action, side), case
    assert reason in d.reason, (case, d.reason)


def test_fees_and_slippage_move_the_bar():
    # 2.2 % expected: trades without costs, not after paying 2 x 15 bps on a round trip.
    assert run(pred(0.022), TradingRules()).action == "trade"
    costly = TradingRules(fee_bps=10, slippage_bps=5)
    d = run(pred(0.022), costly)
    assert d.action == "store" and "net of 15 bps per side" in d.reason
    assert run(pred(0.0231), costly).action == "trade"  # 2.31 - 0.30 = 2.01 % > 2 %
    # A sell pays one side only: -2.2 % + 0.15 % = -2.05 % still sells the long position.
    assert run(pred(-0.022), costly, position=5, total=500).side == "sell"
    assert run(pred(-0.021), costly, position=5, total=500).action == "store"


def test_limits_and_kill_switch_still_apply_to_the_interval_rule():
    p = pred(0.08, 0.03, 0.12)
    full = run(p, INTERVAL, position=50.0, total=5000.0)  # 50 x 100 = the 5000 per-coin limit
    assert full.action == "store" and "position limit reached" in full.reason
    killed = decide(prediction=p, account=book(0, 0), kill_switch=True, rules=INTERVAL)
    assert killed.action == "store" and killed.reason == "kill switch on"


def test_return_interval_of_reads_the_horizon_end():
    p = pred(0.05, -0.02, 0.11)
    p["intervals"]["80"] = {"lower": [90.0, 98.0], "upper": [105.0, 111.0]}
    assert return_interval_of(p, 80) == pytest.approx((-0.02, 0.11))
    assert return_interval_of(p, 95) is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("fee_bps", -1),
        ("slippage_bps", float("inf")),
        ("interval_level", 100),
        ("interval_level", 0),
        ("interval_level", "80"),
    ],
)
def test_bad_rule_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TradingRules(**{field: value})


def test_describe():
    assert TradingRules().describe() == "point>2%"
    assert TradingRules(interval_level=80, fee_bps=10, slippage_bps=5).describe() == "80%-interval>2%, 15 bps"
