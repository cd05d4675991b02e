"""The day's table and summary (crypto_ml.reporting): a master run summarises its own model and
horizon, not every prediction stored for the day."""

from __future__ import annotations

import pytest

from crypto_ml.reporting import day_summary, day_table
from crypto_ml.storage import migrate, store_prediction


@pytest.fixture
def url(sqlite_url):
    migrate(sqlite_url)
    return sqlite_url


def test_a_runs_summary_counts_its_own_model_and_horizon_only(url):
    for coin in ("btc", "eth"):
        for model, horizon in (("naive", 10), ("drift", 10), ("drift", 3)):
            store_prediction(coin=coin, as_of="2017-06-01", model=model, version=0, horizon=horizon,
                             values=[100.0] * horizon, last_close=100.0, url=url)
    assert len(day_table("2017-06-01", url=url)) == 6  # every prediction of the day
    drift = day_summary("2017-06-01", coins=["btc", "eth"], model="drift", horizon=10, url=url)
    assert (drift["predicted"], drift["missing"]) == (2, [])
    table = day_table("2017-06-01", model="drift", horizon=3, url=url)
    assert set(zip(table["model"], table["horizon"])) == {("drift", 3)} and len(table) == 2
    lstm = day_summary("2017-06-01", coins=["btc"], model="lstm", horizon=10, url=url)
    assert (lstm["predicted"], lstm["missing"]) == (0, ["btc"])


def test_the_table_prints_numbers_for_people():
    import pandas as pd

    from crypto_ml.reporting import format_table

    text = format_table(pd.DataFrame({"coin": ["ark", "bitcoin"], "last_close": [0.5821911, 2539.32],
                                      "tiny": [0.00001234, 0.0]}))
    assert "0.582191" in text and "2,539.32" in text and "1.23e-05" in text and "e-01" not in text
