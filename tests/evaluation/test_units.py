"""The JSON units of work give, through a JSON round trip, the frames of the local run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crypto_ml.data.loader import CryptoLoader
from crypto_ml.evaluation import BacktestResult, backtest_series, forecast_days, simulate
from crypto_ml.evaluation.strategy import default_rules
from crypto_ml.evaluation.units import backtest_from_json, backtest_unit, forecast_unit, forecasts_from_json


def _over_json(data: dict) -> dict:
    return json.loads(json.dumps(data, allow_nan=False))  # strict JSON: no NaN, no Timestamp


@pytest.fixture(scope="module")
def coins() -> dict:
    loader = CryptoLoader()
    out = {}
    for coin in ("bitcoin", "aidos-kuneen"):  # a long history, and one too short for the period
        closes, dates = loader.get_prices(coin)
        out[coin] = (closes, dates, [float(v) for v in closes], [str(pd.Timestamp(d).date()) for d in dates])
    return out


@pytest.mark.parametrize("model", ["naive", "ar"])
@pytest.mark.parametrize("coin", ["bitcoin", "aidos-kuneen"])
def test_backtest_unit_round_trips_to_the_local_result(coins, coin, model):
    closes, dates, closes_json, dates_json = coins[coin]
    answer = _over_json(
        backtest_unit(
            coin,
            model,
            closes_json,
            dates_json,
            period=60,
            folds=3,
            horizon=7,
            params={"lags": 3} if model == "ar" else None,
        )
    )
    local = backtest_series(
        model,
        closes,
        dates,
        coin=coin,
        period=60,
        folds=3,
        horizon=7,
        params={"lags": 3} if model == "ar" else None,
    )
    back = backtest_from_json(answer)
    for name in ("folds", "skipped", "forecasts"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(local, name), check_exact=True)
    assert back.params == local.params
    assert (coin == "aidos-kuneen") == (not answer["folds"] and len(answer["skipped"]) == 1)


def test_joined_units_give_the_coverage_of_the_local_run(coins):
    answers = [
        _over_json(backtest_unit(c, "naive", coins[c][2], coins[c][3], period=90, folds=3)) for c in coins
    ]
    joined = BacktestResult.concat(backtest_from_json(a) for a in answers)
    local = BacktestResult.concat(
        backtest_series("naive", coins[c][0], coins[c][1], coin=c, period=90, folds=3) for c in coins
    )
    pd.testing.assert_frame_equal(joined.coverage(), local.coverage())
    pd.testing.assert_frame_equal(joined.summary, local.summary)


def test_forecast_unit_round_trips_and_replays_the_same(coins):
    closes, dates, closes_json, dates_json = coins["bitcoin"]
    unit = forecast_unit("bitcoin", "drift", closes_json, dates_json, start="2017-08-01", horizon=5)
    answer = _over_json(unit)
    local = forecast_days("drift", closes, dates, start="2017-08-01", coin="bitcoin", horizon=5)
    back = forecasts_from_json(answer)
    pd.testing.assert_frame_equal(back, local, check_exact=True)
    assert np.isfinite(back["lower_80"]).all()
    prices = pd.DataFrame({"bitcoin": pd.Series(closes, index=pd.DatetimeIndex(dates))}).loc["2017-08-01":]
    rules = default_rules()["interval80"]
    remote = simulate({"bitcoin": back}, prices, rules, horizon=5)
    here = simulate({"bitcoin": local}, prices, rules, horizon=5)
    pd.testing.assert_frame_equal(remote["orders"], here["orders"])
    pd.testing.assert_series_equal(remote["equity"], here["equity"])


def test_a_unit_without_forecasts_round_trips_to_an_empty_frame():
    dates = [str(d.date()) for d in pd.date_range("2017-01-01", periods=5)]
    answer = _over_json(forecast_unit("tiny", "ar", [1.0, 2.0, 3.0, 4.0, 5.0], dates, start=dates[0]))
    assert answer["forecasts"] == [] and forecasts_from_json(answer).empty


def test_units_refuse_more_folds_than_the_period_as_the_local_run_does():
    from crypto_ml.evaluation.units import backtest_units

    with pytest.raises(ValueError, match="period 30 is shorter than folds 40"):
        backtest_units(["bitcoin"], ["naive"], period=30, folds=40)
