"""Walk-forward backtest: coverage and width of the prediction intervals per model and level."""

from __future__ import annotations

import numpy as np
import pytest

from crypto_ml.cli import main
from crypto_ml.evaluation import BacktestResult, backtest_series, format_report, interval_score


def test_coverage_on_random_walks_of_known_distribution():
    rng = np.random.default_rng(21)
    parts = []
    for i in range(40):
        y = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, 600)))
        for model in ("naive", "ar"):
            parts.append(backtest_series(model, y, coin=f"rw{i}", period=200, folds=10, horizon=10))
    result = BacktestResult.concat(parts)
    cov = result.coverage().set_index(["model", "level"])
    assert set(cov.index) == {("naive", 80.0), ("naive", 95.0), ("ar", 80.0), ("ar", 95.0)}
    for (model, level), row in cov.iterrows():
        assert row["n"] == 40 * 10 * 10 and row["n_coins"] == 40
        assert abs(row["coverage"] - level) <= 5.0, (model, level, row["coverage"])
        assert row["miss_below"] + row["miss_above"] == pytest.approx(100 - row["coverage"])
    # The 95 % band is wider than the 80 % one, about 1.96/1.28 times for Gaussian returns.
    ratio = cov.loc[("naive", 95.0), "mean_width_pct"] / cov.loc[("naive", 80.0), "mean_width_pct"]
    assert ratio == pytest.approx(1.96 / 1.2816, rel=0.15)
    assert "## Prediction intervals: coverage" in format_report(result)
    # The interval score is the width plus the misses' penalty: never below the mean width.
    for _, row in cov.iterrows():
        assert row["interval_score_pct"] >= row["mean_width_pct"] - 1e-9


def test_interval_score_by_hand():
    # 80 %: a = 0.2, a miss costs 2 / 0.2 = 10 times its distance.
    got = interval_score([90, 90, 90], [110, 110, 110], [100, 85, 112], 80)
    assert got.tolist() == pytest.approx([20.0, 20.0 + 10 * 5, 20.0 + 10 * 2])


def test_cli_reports_coverage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    assert (
        main(
            [
                "backtest",
                "--coins",
                "bitcoin,ethereum",
                "--models",
                "naive,drift",
                "--period",
                "60",
                "--folds",
                "3",
                "--horizon",
                "5",
                "--levels",
                "50,90",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert (
        "| model | level | n_coins | n | coverage | mean_width_pct | median_width_pct | interval_score_pct "
        "| miss_below | miss_above |"
    ) in out
    assert "| naive | 50 | 2 | 30 |" in out and "| drift | 90 | 2 | 30 |" in out
    with pytest.raises(SystemExit) as exc:  # argparse refuses it before anything runs
        main(["backtest", "--levels", "120", "--no-progress"])
    assert exc.value.code == 2
    assert (
        "interval level must be a percentage strictly between 0 and 100, got 120" in capsys.readouterr().err
    )
