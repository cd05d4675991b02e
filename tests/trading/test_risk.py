"""Capital at risk never exceeds capital: the risk module (crypto_ml.trading.risk) that the paper
ledger, the HTTP broker path and the strategy backtest share.

Exposure is counted at market value. The property test replays many synthetic paths (crashes,
whipsaws, gaps, a coin going to (almost) zero) with random signals through the backtest's
simulator on a real SQLite paper ledger and checks, from the orders alone, that cash and equity
never go below zero and the per-coin and total caps hold at every close.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crypto_ml.evaluation import simulate
from crypto_ml.storage import get_trade_requests, migrate
from crypto_ml.trading import HTTPBroker, OrderRequest, PaperBroker, TradingRules, decide, handle_prediction
from crypto_ml.trading.risk import Account, RiskLimits, buy_room, check_order, trims, violations


@pytest.fixture(autouse=True)
def _promotion_gate_off(monkeypatch):
    """These tests are about orders and limits; only a promoted version trades, which
    test_promotion_gate.py tests."""
    monkeypatch.setenv("CRYPTO_ML_PROMOTION_REQUIRED", "0")


LIMITS = RiskLimits()  # capital 20,000, 5,000 per coin, 20,000 total


# -- the module -----------------------------------------------------------------------------------
def test_exposure_and_equity_are_at_market_value():
    a = Account(20000.0, 12000.0, {"btc": 50.0, "eth": -10.0}, {"btc": 40.0, "eth": 100.0})
    assert a.value("btc") == 2000.0 and a.value("eth") == -1000.0
    assert a.exposure == 3000.0 and a.equity == 12000.0 + 2000.0 - 1000.0
    assert a.after_fill("btc", "sell", 50.0, 40.0).positions == {"eth": -10.0}


def test_buy_room_is_the_least_of_coin_total_and_cash():
    fresh = Account(20000.0, 20000.0)
    assert buy_room(fresh, "btc", LIMITS) == (5000.0, "per-coin")
    # 18,000 lost on positions already sold: 2,000 of cash is all that can be bought.
    burnt = Account(20000.0, 2000.0)
    assert buy_room(burnt, "btc", LIMITS) == (2000.0, "cash")
    # Fees and slippage are reserved from the cash.
    assert buy_room(Account(20000.0, 2000.0, buy_cost=0.0015), "btc", LIMITS)[0] == pytest.approx(
        2000 / 1.0015
    )
    # A position that fell frees per-coin room but not cash: still only the cash.
    fell = Account(20000.0, 500.0, {"btc": 195.0}, {"btc": 10.0})
    assert buy_room(fell, "btc", LIMITS) == (500.0, "cash")
    full = Account(20000.0, 1000.0, {f"c{i}": 10.0 for i in range(4)}, {f"c{i}": 475.0 for i in range(4)})
    assert buy_room(full, "c9", LIMITS) == (pytest.approx(1000.0), "total")


def test_trims_bring_a_risen_book_back_within_its_caps():
    # a rose past its cap (6,000), and the total (21,500) is past the 20,000 cap.
    risen = Account(
        20000.0,
        0.0,
        {"a": 100.0, "b": 100.0, "c": 100.0, "d": 100.0, "e": 100.0},
        {"a": 60.0, "b": 45.0, "c": 45.0, "d": 45.0, "e": 20.0},
    )
    plan = trims(risen, LIMITS)
    assert set(plan) == {"a"}  # a to its cap, then the total's 500 from the largest (a)
    assert plan["a"].side == "sell" and plan["a"].quantity == pytest.approx(1500 / 60)
    assert "per-coin cap" in plan["a"].reason and "total cap" in plan["a"].reason
    after = risen
    for t in plan.values():
        after = after.after_fill(t.coin, t.side, t.quantity, after.marks[t.coin])
    assert violations(after, LIMITS) == [] and after.exposure == pytest.approx(20000.0)
    assert trims(after, LIMITS) == {}


def test_check_order_refuses_what_the_cash_or_the_caps_do_not_allow():
    a = Account(20000.0, 800.0, {"btc": 30.0}, {"btc": 100.0})
    assert "the cash is 800.00 USD" in check_order(a, "btc", "buy", 10.0, 100.0, LIMITS)
    assert check_order(a, "btc", "buy", 8.0, 100.0, LIMITS) is None
    assert check_order(a, "btc", "sell", 30.0, 100.0, LIMITS) is None  # reducing is always allowed
    rich = Account(20000.0, 20000.0, {"btc": 45.0}, {"btc": 100.0})
    assert "per-coin cap" in check_order(rich, "btc", "buy", 6.0, 100.0, LIMITS)


def test_violations_name_what_is_wrong():
    bad = Account(20000.0, -156.0, {"btc": 10.0}, {"btc": 1.0})
    assert violations(bad, LIMITS) == [
        "equity -146.00 USD below zero",
        "cash -156.00 USD below zero",
        "exposure 10.00 USD above the equity -146.00 USD",
    ]


# -- the reported failure -------------------------------------------------------------------------
def _prediction(coin, day, er, last_close):
    return {
        "coin": coin,
        "as_of": f"2018-{day // 28 + 1:02d}-{day % 28 + 1:02d}",
        "model": "ar",
        "version": 1,
        "horizon": 10,
        "values": [last_close * (1 + er)],
        "last_close": last_close,
        "expected_return": er,
    }


def test_losses_on_sold_positions_do_not_free_room_on_the_paper_ledger(db_url):
    """The issue's failure: the total cap was computed from the purchase price of the positions
    still open, so a loss on a position already sold freed room to buy again (AR with point-net
    put 25.2 k USD net into 20 k of capital; equity -156 USD)."""
    migrate(db_url)
    broker = PaperBroker(db_url)
    day = 0
    for coin in "abcd":  # 4 coins x 5 buys of 1,000 at 100: the 20,000 are invested
        for _ in range(5):
            handle_prediction(
                _prediction(coin, day, 0.05, 100.0), kill_switch=False, broker=broker, url=db_url
            )
            day += 1
    for coin in "abcd":  # the crash: everything sold at 40, 12,000 realised loss
        for _ in range(13):
            handle_prediction(
                _prediction(coin, day, -0.05, 40.0), kill_switch=False, broker=broker, url=db_url
            )
            day += 1
    assert broker.positions() == {}
    assert broker.total_notional() == 0.0  # what the old cap measured: "20,000 of room"
    book = broker.account(marks={}, as_of="2018-12-31")
    assert (book.cash, book.equity, book.exposure) == (pytest.approx(8000.0), pytest.approx(8000.0), 0.0)
    # Buy signals on every coin again: only the 8,000 of cash can be spent.
    bought = []
    for coin in "abcd":
        for _ in range(4):
            res = handle_prediction(
                _prediction(coin, day, 0.05, 40.0), kill_switch=False, broker=broker, url=db_url
            )
            day += 1
            bought.append(res)
    trades = [r for r in bought if r["decision"] == "trade"]
    assert sum(r["quantity"] for r in trades) * 40.0 == pytest.approx(8000.0)
    last = bought[-1]
    assert last["decision"] == "store" and "no cash to buy with" in last["reason"]
    book = broker.account(marks={c: 1.0 for c in "abcd"}, as_of="2018-12-31")  # a further 97.5 % fall
    assert book.cash == pytest.approx(0.0, abs=1e-6) and book.equity == pytest.approx(200.0)
    # The ledger itself refuses an order the cash cannot pay, whoever decided it.
    res = broker.place_order(OrderRequest("direct", "a", "buy", 10.0, 40.0, "2018-12-31"))
    assert res.status == "rejected" and "the cash is" in res.reason


def test_the_http_dry_run_path_counts_what_it_would_have_bought(db_url):
    migrate(db_url)
    broker = HTTPBroker("http://127.0.0.1:9/orders", ledger_url=db_url)  # dry run: never contacted
    rules = TradingRules(capital=3000.0, max_total_notional=3000.0)
    results = [
        handle_prediction(
            _prediction("btc", d, 0.05, 100.0), kill_switch=False, broker=broker, rules=rules, url=db_url
        )
        for d in range(5)
    ]
    assert [r["status"] for r in results] == ["dry_run"] * 3 + ["stored"] * 2
    assert "position limit reached (total limit)" in results[3]["reason"]
    book = broker.account(3000.0, marks={"btc": 100.0})
    assert book.positions == {"btc": pytest.approx(30.0)} and book.cash == pytest.approx(0.0, abs=1e-6)
    assert len(get_trade_requests(url=db_url)) == 3


# -- property test over synthetic paths -----------------------------------------------------------
DAYS = 90
START = pd.Timestamp("2018-01-01")


def _path(rng: np.random.Generator, kind: str) -> np.ndarray:
    n = DAYS
    if kind == "crash":
        r = rng.normal(-0.03, 0.04, n)
    elif kind == "whipsaw":
        r = 0.12 * np.where(np.arange(n) % rng.integers(2, 6) == 0, 1, -1) + rng.normal(-0.01, 0.02, n)
    elif kind == "gaps":
        r = rng.normal(0, 0.02, n)
        r[rng.choice(n, 4, replace=False)] = rng.choice([-0.6, -0.4, 0.5, 1.5], 4)
    elif kind == "to_zero":
        r = np.linspace(-0.05, -0.6, n) + rng.normal(0, 0.02, n)
    else:  # rally then crash
        r = np.concatenate([rng.normal(0.04, 0.03, n // 2), rng.normal(-0.06, 0.05, n - n // 2)])
    return 100.0 * np.exp(np.cumsum(np.clip(r, -0.95, 3.0)))


def _forecasts(rng, prices: pd.DataFrame, kind: str) -> dict[str, pd.DataFrame]:
    out = {}
    for coin in prices.columns:
        closes = prices[coin].dropna()
        if kind == "always_buy":
            er = np.full(len(closes), 0.08)
        elif kind == "flip":  # buy 5 days, sell 5 days: round trips at a loss in a fall
            er = np.where((np.arange(len(closes)) // 5) % 2 == 0, 0.08, -0.08)
        else:
            er = rng.normal(0.0, 0.06, len(closes))
        out[coin] = pd.DataFrame(
            {"coin": coin, "date": closes.index, "last_close": closes.to_numpy(), "expected_return": er}
        )
    return out


def _replay_checks(sim, prices, rules, fee, slip):
    """Cash, equity and exposure at every close, recomputed from the orders only."""
    marks = prices.ffill()
    limits = RiskLimits.from_rules(rules)
    orders = sim["orders"]
    orders = orders[orders["status"] == "filled"]
    by_day = {d: g for d, g in orders.groupby(pd.to_datetime(orders["date"]))}
    cash, qty = limits.capital, {c: 0.0 for c in prices.columns}
    worst = {
        "max_exposure_over_capital": 0.0,
        "max_exposure_over_equity": 0.0,
        "min_equity": math.inf,
        "min_cash": math.inf,
        "max_coin_over_cap": 0.0,
        "max_net_invested": 0.0,
    }
    invested = 0.0
    for day in marks.index:
        for o in by_day.get(day, pd.DataFrame()).itertuples():
            sign = 1.0 if o.side == "buy" else -1.0
            qty[o.coin] += sign * o.quantity
            cash -= sign * o.notional + o.fee
            invested += sign * o.notional
        close = marks.loc[day]
        values = {c: q * float(close[c]) for c, q in qty.items() if q}
        exposure = sum(abs(v) for v in values.values())
        equity = cash + sum(values.values())
        worst["max_exposure_over_capital"] = max(
            worst["max_exposure_over_capital"], exposure / limits.capital
        )
        if equity > 0:
            worst["max_exposure_over_equity"] = max(worst["max_exposure_over_equity"], exposure / equity)
        worst["min_equity"] = min(worst["min_equity"], equity)
        worst["min_cash"] = min(worst["min_cash"], cash)
        worst["max_coin_over_cap"] = max(
            [worst["max_coin_over_cap"]] + [abs(v) / limits.max_position for v in values.values()]
        )
        worst["max_net_invested"] = max(worst["max_net_invested"], invested)
        assert cash >= -1e-6, (day, cash)
        assert equity >= -1e-6, (day, equity)
        assert exposure <= min(limits.max_total, equity) * (1 + 1e-6) + 1e-6, (day, exposure, equity)
        assert all(abs(v) <= limits.max_position * (1 + 1e-6) for v in values.values()), (day, values)
        assert sim["equity"].loc[day] == pytest.approx(equity, rel=1e-9, abs=1e-6)
    return worst


RULE_SETS = {
    "default": TradingRules(),
    "big orders": TradingRules(order_notional=4000.0, max_position_notional=8000.0),
    "one coin all in": TradingRules(order_notional=7000.0, max_position_notional=20000.0),
    "cap above capital": TradingRules(
        capital=10000.0, max_total_notional=30000.0, max_position_notional=9000.0
    ),
}


KEYS = (
    "max_exposure_over_capital",
    "max_exposure_over_equity",
    "min_equity",
    "min_cash",
    "max_coin_over_cap",
    "max_net_invested_over_capital",
)


def run_paths(n_paths: int, seed: int = 20260103) -> dict[str, dict[str, float]]:
    """Replay ``n_paths`` synthetic books (3 coins x 90 days each, path kinds, signals, rule sets
    and costs drawn in turn) and check every close; the worst case per rule set. Also run by
    ``benchmarks/bench_risk.py`` with more paths."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, periods=DAYS, freq="D")
    worst: dict[str, dict[str, float]] = {}
    for i in range(n_paths):
        kinds = rng.choice(["crash", "whipsaw", "gaps", "to_zero", "rally_crash"], 3)
        prices = pd.DataFrame({f"c{j}": _path(rng, k) for j, k in enumerate(kinds)}, index=dates)
        prices.iloc[: rng.integers(0, 20), 2] = np.nan  # one coin listed later
        signal = ["always_buy", "flip", "random"][i % 3]
        name = list(RULE_SETS)[i % len(RULE_SETS)]
        rules = RULE_SETS[name]
        fee, slip = (10.0, 5.0) if (i // len(RULE_SETS)) % 2 else (0.0, 0.0)
        sim = simulate(
            _forecasts(rng, prices, signal),
            prices,
            rules,
            model=f"p{i}",
            rule=name,
            fee_bps=fee,
            slippage_bps=slip,
        )
        got = _replay_checks(sim, prices, rules, fee / 1e4, slip / 1e4)
        got["max_net_invested_over_capital"] = got.pop("max_net_invested") / rules.book_capital
        w = worst.setdefault(
            name, {"paths": 0, **{k: (math.inf if k.startswith("min") else 0.0) for k in KEYS}}
        )
        w["paths"] += 1
        for key in KEYS:
            w[key] = (min if key.startswith("min") else max)(w[key], got[key])
    return worst


def test_capital_at_risk_never_exceeds_capital_on_synthetic_paths(record_property):
    worst = run_paths(24)
    record_property("risk_worst_case", worst)
    print(f"\nrisk worst case per rule set (3 coins x {DAYS} days a path): {worst}")
    for name, w in worst.items():
        assert w["min_equity"] >= 0 and w["min_cash"] >= -1e-6, name
        assert w["max_exposure_over_equity"] <= 1 + 1e-6 and w["max_coin_over_cap"] <= 1 + 1e-6, name
        assert w["max_net_invested_over_capital"] <= 1 + 1e-6, name
    assert worst["default"]["max_exposure_over_capital"] <= 1 + 1e-6
    # Some paths do lose almost everything (a coin going to zero while all in): the floor is zero.
    assert min(w["min_equity"] for w in worst.values()) < 0.05 * 20000


def test_the_issue_path_buying_back_after_losses():
    """Buy 5 days, sell 5 days, in a 3 %-a-day fall: the old cap (cost of open positions) let
    every buy phase spend the 20,000 again; now the losses stay lost."""
    dates = pd.date_range(START, periods=DAYS, freq="D")
    prices = pd.DataFrame({f"c{j}": 100.0 * np.exp(-0.03 * np.arange(DAYS)) for j in range(4)}, index=dates)
    rules = TradingRules(fee_bps=10, slippage_bps=5)  # point-net
    sim = simulate(_forecasts(None, prices, "flip"), prices, rules, fee_bps=10, slippage_bps=5)
    worst = _replay_checks(sim, prices, rules, 0.001, 0.0005)
    assert worst["min_equity"] >= 0
    buys = sim["orders"][(sim["orders"]["side"] == "buy") & (sim["orders"]["status"] == "filled")]
    assert buys["notional"].sum() > 20000  # it did trade again after losing ...
    assert worst["max_net_invested"] <= 20000 + 1e-6  # ... but never more than the capital, net
    assert (sim["risk"]["equity"] >= 0).all() and (sim["risk"]["cash"] >= -1e-6).all()


def test_a_coin_without_a_stored_close_is_marked_at_its_last_fill_and_the_reason_says_so(db_url):
    migrate(db_url)
    broker = PaperBroker(db_url, limits=RiskLimits(max_position=20000.0))
    assert broker.place_order(OrderRequest("e1", "eth", "buy", 190.0, 100.0, "2018-01-01")).status == "filled"
    book = broker.account(marks={"btc": 50.0}, as_of="2018-01-02")
    assert book.notes == ("eth marked at its last fill 100 (no stored close)",)
    rules = TradingRules(max_total_notional=20000.0)
    d = decide(prediction=_prediction("btc", 1, 0.05, 50.0), account=book, kill_switch=False, rules=rules)
    assert d.action == "trade" and d.quantity == pytest.approx(1000 / 50)
    tight = decide(
        prediction=_prediction("btc", 1, 0.05, 50.0),
        account=book,
        kill_switch=False,
        rules=TradingRules(max_total_notional=19500.0),
    )
    assert "capped by the total limit [eth marked at its last fill 100 (no stored close)]" in tight.reason
