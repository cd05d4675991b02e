"""Backtests on any data: `crypto-ml backtest` (accuracy, coverage, strategy) and the benchmark
scripts take the data commands' source options and a window, and never read the bundled data
when another source is given."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_ml.cli import main
from crypto_ml.data.loader import CryptoLoader
from crypto_ml.evaluation import run_backtest, run_strategy

ROOT = Path(__file__).resolve().parents[2]
DATES = pd.date_range("2018-01-01", "2019-06-30", freq="D")  # all after the bundled data's end


def _long_csv(path: Path, coins=("alpha", "beta"), dates=DATES) -> Path:
    rng = np.random.default_rng(7)
    rows = []
    for k, coin in enumerate(coins):
        close = 50.0 * (k + 1) * np.exp(np.cumsum(rng.normal(-0.002, 0.04, len(dates))))
        for d, c in zip(dates, close):
            rows.append(
                {
                    "coin": coin,
                    "name": coin.title(),
                    "date": d.date().isoformat(),
                    "open": c,
                    "high": c * 1.02,
                    "low": c * 0.98,
                    "close": c,
                    "volume": 1e6,
                    "market_cap": 1e8,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_run_backtest_window_reads_nothing_after_the_end(tmp_path):
    loader = CryptoLoader(_long_csv(tmp_path / "h.csv"))
    r = run_backtest(
        None,
        ["naive", "drift"],
        loader=loader,
        folds=4,
        horizon=10,
        start="2019-01-01",
        end="2019-03-31",
        levels=(80, 95),
    )
    assert set(r.folds["coin"]) == {"alpha", "beta"}
    assert r.forecasts["date"].min() == pd.Timestamp("2019-01-01")
    assert r.forecasts["date"].max() <= pd.Timestamp("2019-03-31")
    assert r.params["start"].isoformat() == "2019-01-01" and r.params["period"] is None
    late = run_backtest(["alpha"], ["naive"], loader=loader, folds=4, start="2019-06-28", end="2019-06-30")
    assert (
        "3 closes in the window 2019-06-28 .. 2019-06-30, fewer than 4 folds"
        in late.skipped["reason"].iloc[0]
    )


def test_run_strategy_window(tmp_path):
    loader = CryptoLoader(_long_csv(tmp_path / "h.csv"))
    r = run_strategy(None, ["drift"], loader=loader, start="2018-09-01", end="2018-11-30")
    assert (r.params["start"].isoformat(), r.params["end"].isoformat(), r.params["days"]) == (
        "2018-09-01",
        "2018-11-30",
        91,
    )
    assert r.equity.index.min() == pd.Timestamp("2018-09-01") and r.equity.index.max() == pd.Timestamp(
        "2018-11-30"
    )
    assert r.prices.index.max() == pd.Timestamp("2018-11-30")
    assert r.forecasts["date"].max() <= pd.Timestamp("2018-11-30")
    with pytest.raises(ValueError, match="give days or start, not both"):
        run_strategy(None, ["drift"], loader=loader, start="2018-09-01", days=30)
    with pytest.raises(ValueError, match="no closes between"):
        run_strategy(None, ["drift"], loader=loader, start="2020-01-01", end="2020-02-01")


def test_cli_backtest_and_strategy_on_a_csv(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    csv = _long_csv(tmp_path / "h.csv")
    code = main(
        [
            "backtest",
            "--source",
            str(csv),
            "--coins",
            "all",
            "--models",
            "naive,drift",
            "--folds",
            "3",
            "--start",
            "2019-02-01",
            "--end",
            "2019-04-30",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"--source {csv}" in out and "--start 2019-02-01 --end 2019-04-30" in out
    assert "Walk-forward backtest: 2019-02-01 .. 2019-04-30" in out
    assert "| alpha |" in out and "bitcoin" not in out
    assert (tmp_path / "backtest_2019-02-01_2019-04-30_3f_10h_folds.csv").exists()
    code = main(
        [
            "backtest",
            "--strategy",
            "--source",
            str(csv),
            "--coins",
            "alpha,beta",
            "--models",
            "drift",
            "--rules",
            "shipped",
            "--period",
            "30",
            "--end",
            "2018-12-31",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "2 coins, 2018-12-02 .. 2018-12-31 (30 days)" in out and "--period 30 --end 2018-12-31" in out
    # Bad windows are one clear error each.
    assert (
        main(["backtest", "--source", str(csv), "--start", "2019-01-01", "--period", "30", "--no-progress"])
        == 2
    )
    assert "give --period or --start, not both" in capsys.readouterr().err
    assert (
        main(
            [
                "backtest",
                "--source",
                str(csv),
                "--as-of",
                "2018-06-01",
                "--end",
                "2018-07-01",
                "--no-progress",
            ]
        )
        != 0
    )
    assert "--end 2018-07-01 is after --as-of 2018-06-01" in capsys.readouterr().err


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_strategy_coverage_uses_the_reports_own_closes(tmp_path, monkeypatch):
    """The coverage step re-read the bundled closes, so on other data it dropped every day after
    2017-09-22; now it scores every day whose horizon end is in the window, and counts the rest."""
    csv = _long_csv(tmp_path / "h.csv")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bench_strategy.py",
            "--source",
            str(csv),
            "--models",
            "drift",
            "--start",
            "2018-10-01",
            "--end",
            "2018-11-29",
            "--out",
            str(tmp_path),
            "--stem",
            "s",
        ],
    )
    assert _bench("bench_strategy").main() == 0
    text = (tmp_path / "s.md").read_text()
    assert f"--source {csv}" in text and "2018-10-01 .. 2018-11-29" in text
    table = [line for line in text.splitlines() if line.startswith("| drift | 80 |")]
    assert table, text
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    n_coins, n, not_scored = int(cells[2]), int(cells[3]), int(cells[4])
    assert n_coins == 2 and not_scored == 2 * 10 and n == 2 * 60 - not_scored
