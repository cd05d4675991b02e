"""Walk-forward backtests on hand-computable series and on real coins (cheap models only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crypto_ml.evaluation import BacktestResult, backtest_series, format_report, run_backtest, score
from crypto_ml.evaluation.backtest import fold_starts
from crypto_ml.forecasting import LinearTrendForecaster

LINE = 10.0 + 2.0 * np.arange(100)
DATES = pd.date_range("2017-01-01", periods=100, freq="D")


def test_fold_starts_split_the_test_period_evenly():
    assert fold_starts(100, 30, 3) == [70, 80, 90]
    assert fold_starts(100, 365 // 365, 1) == [99]
    assert fold_starts(1000, 365, 12)[0] == 635 and len(fold_starts(1000, 365, 12)) == 12


def test_linear_is_exact_and_naive_is_hand_computed_on_a_straight_line():
    lin = backtest_series("linear", LINE, DATES, coin="line", period=30, folds=3, horizon=5)
    assert lin.folds["fold"].tolist() == [0, 1, 2]
    assert lin.folds["n_train"].tolist() == [70, 80, 90]
    assert lin.folds["train_end"].tolist() == [DATES[69], DATES[79], DATES[89]]
    np.testing.assert_allclose(lin.folds[["mae", "rmse", "mape", "mase"]].to_numpy(), 0.0, atol=1e-9)
    assert (lin.folds["direction"] == 1.0).all()

    naive = backtest_series("naive", LINE, DATES, coin="line", period=30, folds=3, horizon=5)
    errors = 2.0 * np.arange(1, 6)  # the line rises 2 a day; naive stays at the last close
    first = naive.folds.iloc[0]
    assert first["mae"] == pytest.approx(errors.mean())  # 6
    assert first["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))  # 2*sqrt(11)
    assert first["mase"] == pytest.approx(3.0)  # MAE 6 / in-sample one-step naive MAE 2
    actual = LINE[70:75]
    assert first["mape"] == pytest.approx(np.mean(errors / actual) * 100)
    assert first["direction"] == 0.0  # flat forecast vs a rising price
    fc = naive.forecasts[naive.forecasts["fold"] == 0]
    assert fc["forecast"].tolist() == [LINE[69]] * 5 and fc["actual"].tolist() == actual.tolist()
    assert fc["date"].tolist() == list(DATES[70:75])


def test_last_fold_horizon_is_cut_at_the_end_of_data():
    res = backtest_series("naive", LINE, period=12, folds=3, horizon=5)
    assert res.folds["n_train"].tolist() == [88, 92, 96]
    assert res.folds["horizon"].tolist() == [5, 5, 4]


def test_score_direction_and_mase():
    m = score(actual=[11, 9, 10], forecast=[12, 10.5, 9], last_close=10, train=[1, 2, 4])
    assert m["direction"] == pytest.approx(1 / 3)  # up/up right, up/down wrong, down/flat wrong
    m = score(actual=[11, 9, 10], forecast=[12, 11, 10], last_close=10, train=[1, 2, 4])
    assert m["direction"] == pytest.approx(2 / 3)  # up/up, up/down, flat/flat
    assert m["mae"] == pytest.approx(1.0) and m["mase"] == pytest.approx(1.0 / 1.5)  # errors 1, 2, 0
    assert np.isnan(score([1.0], [1.0], 1.0, [5.0, 5.0])["mase"])  # constant training data


def test_short_series_is_skipped_with_the_reason():
    res = backtest_series("ar", LINE[:50], coin="short", period=30, folds=3)
    assert res.folds.empty
    (row,) = res.skipped.to_dict("records")
    assert row["coin"] == "short" and row["model"] == "ar"
    assert row["reason"] == "50 rows; ar needs 30 test days + 26 training rows = 56"


def test_a_failing_fold_is_reported_not_dropped():
    y = np.r_[-1.0, np.linspace(1, 2, 99)]  # a non-positive price in every training window
    res = backtest_series("ar", y, coin="neg", period=20, folds=2)
    assert res.folds.empty
    assert res.skipped["fold"].tolist() == [0, 1]
    assert res.skipped["reason"].str.contains("positive prices").all()


def test_forecaster_instances_are_cloned_per_fold():
    template = LinearTrendForecaster(window=10)
    res = backtest_series(template, LINE, period=20, folds=2, horizon=3)
    assert not hasattr(template, "n_obs_")  # the template itself is never fitted
    np.testing.assert_allclose(res.folds["mae"], 0.0, atol=1e-9)
    assert set(res.folds["model"]) == {"linear"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"horizon": 0}, "horizon must be a positive int"),
        ({"folds": 0}, "folds must be a positive int"),
        ({"period": 10, "folds": 11}, "cannot exceed the test period"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        backtest_series("naive", LINE, **kwargs)


def test_run_backtest_on_real_coins_reports_the_short_one():
    res = run_backtest(["ethereum", "NEBLIO"], ["naive", "drift"], period=60, folds=3, horizon=5)
    assert isinstance(res, BacktestResult)
    summary = res.summary
    assert set(summary["coin"]) == {"ethereum"} and set(summary["model"]) == {"naive", "drift"}
    assert (summary["n_folds"] == 3).all()
    assert sorted(res.skipped["model"]) == ["drift", "naive"]
    assert res.skipped["reason"].str.startswith("11 rows;").all()
    assert len(res.folds) == 6 and list(res.folds.columns[:3]) == ["coin", "model", "fold"]
    agg = res.aggregate().set_index("model")
    assert agg.loc["naive", "mase_vs_naive"] == 1.0
    assert agg.loc["drift", "beats_naive"] in {"0/1", "1/1"}
    report = format_report(res)
    assert "## Aggregate" in report and "| ethereum | drift | 3 |" in report and "neblio" in report


def test_aggregate_is_like_for_like_by_default():
    rows = [("a", "naive", 2.0), ("b", "naive", 10.0), ("a", "lstm", 1.0)]  # lstm skipped coin b
    folds = pd.DataFrame(
        [
            {"coin": c, "model": m, "fold": 0, "mae": v, "rmse": v, "mape": v, "mase": v, "direction": 0.5}
            for c, m, v in rows
        ]
    )
    res = BacktestResult(folds=folds)
    agg = res.aggregate().set_index("model")
    assert agg["n_coins"].tolist() == [1, 1] and agg.loc["naive", "mase"] == 2.0
    assert agg.loc["lstm", "mase_vs_naive"] == 0.5 and agg.loc["lstm", "beats_naive"] == "1/1"
    everything = res.aggregate(common=False).set_index("model")
    assert everything.loc["naive", "n_coins"] == 2 and everything.loc["naive", "mase"] == 6.0
    assert everything.loc["lstm", "mase_vs_naive"] == 0.5  # still paired on coin a


def test_more_folds_than_the_period_is_refused_before_any_fit():
    # Without a window each coin's test period is ``period`` days: more folds than days was an
    # AttributeError from the skip report; it is a refusal naming both numbers.
    with pytest.raises(ValueError, match="period 30 is shorter than folds 40"):
        run_backtest(["bitcoin"], ["naive"], period=30, folds=40)
