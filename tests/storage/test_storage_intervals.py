"""Intervals stored with the prediction (migration 0003), on SQLite and PostgreSQL; the day table."""

from __future__ import annotations

import pytest

from crypto_ml.storage import get_predictions, migrate, store_prediction
from crypto_ml.storage.reporting import day_table

KEY = dict(coin="btc", as_of="2017-06-01", model="ar", version=0, horizon=3)
BANDS = {
    "80": {"lower": [95.0, 93.0, 92.0], "upper": [105.0, 107.0, 109.0]},
    "95": {"lower": [90.0, 88.0, 85.0], "upper": [110.0, 113.0, 118.0]},
}


@pytest.fixture
def url(db_url):
    migrate(db_url)
    return db_url


def test_intervals_are_stored_and_a_later_store_without_them_keeps_them(url):
    store_prediction(
        values=[101.0, 102.0, 103.0],
        last_close=100.0,
        intervals=BANDS,
        interval_method="conformal",
        url=url,
        **KEY,
    )
    (row,) = get_predictions(coin="btc", url=url)
    assert row["intervals"] == BANDS and row["interval_method"] == "conformal"
    store_prediction(values=[101.0, 102.0, 103.0], last_close=100.0, url=url, **KEY)
    (row,) = get_predictions(coin="btc", url=url)
    assert row["intervals"] == BANDS


def test_a_prediction_without_intervals_stores_why_and_a_later_one_with_them_clears_it(url):
    why = "NaiveForecaster has no prediction intervals: fitted on 30 closes, calibrating needs at least 41"
    store_prediction(values=[101.0, 102.0, 103.0], last_close=100.0, interval_reason=why, url=url, **KEY)
    (row,) = get_predictions(coin="btc", url=url)
    assert row["intervals"] is None and row["interval_reason"] == why
    store_prediction(values=[101.0, 102.0, 103.0], last_close=100.0, intervals=BANDS, url=url, **KEY)
    (row,) = get_predictions(coin="btc", url=url)
    assert row["intervals"] == BANDS and row["interval_reason"] is None


def test_day_table_shows_the_intervals_of_the_horizon_return(url):
    store_prediction(values=[101.0, 102.0, 103.0], last_close=100.0, intervals=BANDS, url=url, **KEY)
    store_prediction(
        values=[5.0, 5.0, 5.0], last_close=5.0, url=url, **{**KEY, "coin": "eth"}
    )  # stored before intervals existed
    table = day_table("2017-06-01", url=url)
    assert list(table.columns) == [
        "coin",
        "model",
        "version",
        "horizon",
        "last_close",
        "forecast",
        "expected_return_pct",
        "interval80_pct",
        "interval95_pct",
        "decision",
        "interval_reason",
    ]
    btc = table.set_index("coin").loc["btc"]
    assert (btc["interval80_pct"], btc["interval95_pct"]) == ("-8.0..+9.0", "-15.0..+18.0")
    assert table.set_index("coin").loc["eth", "interval80_pct"] == "-"


@pytest.mark.parametrize(
    "intervals, message",
    [
        ({"80": {"lower": [1.0, 2.0], "upper": [3.0, 4.0]}}, "interval '80' needs 3 lower and 3 upper"),
        (
            {"80": {"lower": [1.0, 9.0, 2.0], "upper": [3.0, 4.0, 5.0]}},
            "interval '80' step 2: bounds 9.0..4.0",
        ),
        ({"180": {"lower": [1.0] * 3, "upper": [2.0] * 3}}, "between 0 and 100"),
        ({"80": {"low": [1.0] * 3}}, "exactly 'lower' and 'upper'"),
        ([1, 2], "must be an object keyed by level"),
    ],
)
def test_bad_intervals_name_the_coin_day_and_problem(url, intervals, message):
    with pytest.raises(
        ValueError, match=r"prediction of 'btc' as of 2017-06-01: .*" + message.replace(".", r"\.")
    ):
        store_prediction(values=[101.0, 102.0, 103.0], last_close=100.0, intervals=intervals, url=url, **KEY)
