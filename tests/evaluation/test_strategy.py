"""Strategy backtest: point in time, accounting on the paper ledger, metrics, outputs, CLI."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

from crypto_ml.cli import main
from crypto_ml.evaluation import default_rules, forecast_days, run_strategy
from crypto_ml.evaluation.forecasts import check_series
from crypto_ml.evaluation.metrics import curve_metrics
from crypto_ml.evaluation.simulation import buy_and_hold
from crypto_ml.trading.rules import TradingRules

DATES = pd.date_range("2020-01-01", periods=400, freq="D")
JUMP = 340  # the day (index) the price jumps


def trending(seed: int, *, jump: float | None = None) -> np.ndarray:
    """A noisy uptrend; with ``jump`` the close is multiplied by it from day JUMP on."""
    rng = np.random.default_rng(seed)
    y = 100.0 * np.exp(np.cumsum(rng.normal(0.004, 0.02, len(DATES))))
    if jump is not None:
        y[JUMP:] *= jump
    return y


def test_nothing_before_the_jump_day_knows_about_the_jump():
    """Two worlds identical up to the day before JUMP: forecasts, intervals, decisions and orders
    of every earlier day are identical; from the jump day on they may differ."""
    plain, jumped = trending(1), trending(1, jump=3.0)
    kwargs = dict(models=["drift", "ar"], days=120, refit_every=5)
    a = run_strategy(series={"coin-a": (plain, DATES)}, **kwargs)
    b = run_strategy(series={"coin-a": (jumped, DATES)}, **kwargs)
    cut = DATES[JUMP]
    before_a = a.forecasts[a.forecasts["date"] < cut].reset_index(drop=True)
    before_b = b.forecasts[b.forecasts["date"] < cut].reset_index(drop=True)
    assert len(before_a) > 50
    pd.testing.assert_frame_equal(before_a, before_b)
    assert (a.forecasts["train_end"] <= a.forecasts["date"]).all()  # parameters never from later days
    orders_a = a.orders[pd.to_datetime(a.orders["date"]) < cut].reset_index(drop=True)
    orders_b = b.orders[pd.to_datetime(b.orders["date"]) < cut].reset_index(drop=True)
    assert len(orders_a) > 0
    pd.testing.assert_frame_equal(orders_a, orders_b)
    eq_a, eq_b = a.equity[a.equity.index < cut], b.equity[b.equity.index < cut]
    pd.testing.assert_frame_equal(eq_a.drop(columns="buy-and-hold"), eq_b.drop(columns="buy-and-hold"))
    # ... and the jump is seen on its own day (the test would not notice a leak if it never was).
    on_a = a.forecasts[a.forecasts["date"] == cut]
    on_b = b.forecasts[b.forecasts["date"] == cut]
    assert on_b["last_close"].to_numpy() == pytest.approx(3 * on_a["last_close"].to_numpy())


def test_forecast_days_refits_on_schedule_and_fits_only_the_past():
    y = trending(2)
    frame = forecast_days("drift", y, DATES, start=DATES[300], refit_every=7)
    assert frame["date"].iloc[0] == DATES[300] and len(frame) == 100
    assert frame["refit"].sum() == math.ceil(100 / 7)
    # The drift's slope on day i is (y[i] - y[0]) / i only if it was refitted that day.
    row = frame.iloc[7]
    assert row["refit"] and row["train_end"] == DATES[307]
    slope = (y[307] - y[0]) / 307
    assert row["forecast"] == pytest.approx(y[307] + 10 * slope)
    assert {"lower_80", "upper_80", "lower_95", "upper_95"} <= set(frame.columns)
    assert (frame["lower_95"] <= frame["lower_80"]).all() and (frame["upper_80"] <= frame["upper_95"]).all()


def test_accounting_follows_the_paper_ledger_fees_and_slippage():
    y = trending(3)
    rules = {"shipped": TradingRules()}
    r = run_strategy(
        series={"up": (y, DATES)}, models=["drift"], rules=rules, days=100, fee_bps=10, slippage_bps=5
    )
    orders = r.orders
    assert len(orders) >= 1 and set(orders["status"]) == {"filled"}
    first = orders.iloc[0]
    assert first["side"] == "buy"
    assert first["price"] == pytest.approx(first["last_close"] * 1.0005)
    assert first["fee"] == pytest.approx(first["notional"] * 0.001)
    # Position never exceeds the per-coin limit (5 orders of 1000 at entry prices).
    assert orders["position_after"].max() * orders["price"].min() <= 5000 * 1.01
    # Equity = capital + cash flows + position marked at the close, day by day.
    eq = r.equity["drift/shipped"]
    qty = cash = 0.0
    by_day = {d: g for d, g in orders.assign(date=pd.to_datetime(orders["date"])).groupby("date")}
    for day, value in eq.items():
        for o in by_day.get(day, pd.DataFrame()).itertuples():
            sign = 1 if o.side == "buy" else -1
            qty += sign * o.quantity
            cash -= sign * o.notional + o.fee
        assert value == pytest.approx(20000 + cash + qty * y[DATES.get_loc(day)], rel=1e-9)
    row = r.summary.set_index("model").loc["drift"]
    assert row["fees"] == pytest.approx(orders["fee"].sum())
    assert row["turnover"] == pytest.approx(orders["notional"].sum() / 20000)
    assert row["total_return"] == pytest.approx(eq.iloc[-1] / 20000 - 1)
    assert row["vs_no_trade"] == row["total_return"]


def test_naive_never_trades_and_equals_no_trade():
    series = {f"c{i}": (trending(10 + i), DATES) for i in range(3)}
    r = run_strategy(series=series, models=["naive"], days=60)
    naive = r.summary[r.summary["model"] == "naive"]
    assert set(naive["rule"]) == set(default_rules())
    assert (naive["trades"] == 0).all() and (naive["total_return"] == 0).all()
    none = r.summary.set_index("model").loc["no-trade"]
    assert none["total_return"] == 0 and none["max_drawdown"] == 0
    assert r.orders.empty


def test_metrics_on_known_curves():
    capital = 100.0
    m = curve_metrics(pd.Series([110.0, 99.0, 121.0]), capital)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    daily = np.array([0.1, -0.1, 121 / 99 - 1])
    assert m["ann_volatility"] == pytest.approx(np.std(daily, ddof=1) * math.sqrt(365))
    assert m["sharpe"] == pytest.approx(daily.mean() / np.std(daily, ddof=1) * math.sqrt(365))
    prices = pd.DataFrame({"a": [10.0, 20.0], "b": [5.0, 5.0]}, index=DATES[:2])
    bh = buy_and_hold(prices, 1000.0, fee_bps=10, slippage_bps=0)
    assert bh.iloc[-1] == pytest.approx(500 * 0.999 * 2 + 500 * 0.999)


def test_bad_input_names_coin_row_and_problem():
    y = trending(4)
    y[17] = float("nan")
    with pytest.raises(
        ValueError, match=r"coin 'broken': row 17 \(2020-01-18\): close nan is not a finite price"
    ):
        run_strategy(series={"broken": (y, DATES)}, models=["naive"], days=30)
    with pytest.raises(ValueError, match=r"coin 'x': row 2 \(2020-01-02\): dates must increase"):
        check_series("x", [1.0, 2.0, 3.0], [DATES[0], DATES[2], DATES[1]])
    with pytest.raises(ValueError, match="refit_every"):
        forecast_days("naive", trending(5), DATES, start=DATES[-10], refit_every=0)


def test_report_files(tmp_path):
    r = run_strategy(series={"up": (trending(6), DATES)}, models=["drift"], days=60)
    paths = r.write(tmp_path, stem="s")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths["report"].read_text()
    assert "| drift | interval80 |" in text and "| buy-and-hold |" in text and "| no-trade |" in text
    with open(paths["orders"]) as fh:
        assert len(list(csv.DictReader(fh))) == len(r.orders)


def test_cli_strategy_on_bundled_coins(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    code = main(
        [
            "backtest",
            "--strategy",
            "--coins",
            "bitcoin,ethereum",
            "--models",
            "naive,drift",
            "--period",
            "30",
            "--rules",
            "shipped,interval80",
            "--out",
            str(tmp_path),
            "--report",
            str(tmp_path / "s.md"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Command: crypto-ml backtest --strategy" in out and "2017-08-24 .. 2017-09-22" in out
    assert "| naive | shipped |" in out and "| drift | interval80 |" in out
    assert (tmp_path / "strategy_30d_10h_equity.png").exists()
    assert (tmp_path / "strategy_30d_10h_orders.csv").exists()
    assert main(["backtest", "--strategy", "--rules", "yolo", "--no-progress"]) == 2
    assert "valid: shipped, point-net, interval80, interval95" in capsys.readouterr().err
