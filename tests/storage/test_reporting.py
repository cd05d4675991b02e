"""The day's table, summary and plot (crypto_ml.storage.reporting): a master run summarises its own
model and horizon, numbers print for people, and the plot's forecast panel picks its coins by absolute
expected return and says how."""

import pandas as pd
import pytest

from crypto_ml.storage import migrate, store_prediction
from crypto_ml.storage.reporting import day_summary, day_table, largest_moves


def test_the_panel_shows_the_largest_moves_either_way():
    table = pd.DataFrame({"coin": ["ark", "btc", "eth", "xrp"], "expected_return_pct": [0.5, -3.0, 1.0, 0.0]})
    assert largest_moves(table, 2) == (["btc", "eth"], "2 largest expected moves")


def test_equal_moves_are_named_as_such_not_as_the_largest():
    table = pd.DataFrame({"coin": ["ark", "btc", "eth"], "expected_return_pct": [0.0, 0.0, 0.0]})
    coins, caption = largest_moves(table, 2)
    assert coins == ["ark", "btc"]
    assert caption == "every expected move is 0.00%: the first 2 coins"


def test_equal_moves_rank_the_widest_intervals_when_the_table_has_them():
    table = pd.DataFrame(
        {
            "coin": ["ark", "btc", "eth"],
            "expected_return_pct": [0.0, 0.0, 0.0],
            "width80_pct": [10.0, float("nan"), 40.0],
        }
    )
    assert largest_moves(table, 2) == (
        ["eth", "ark"],
        "every expected move is 0.00%: the 2 widest 80% intervals",
    )


def _store_day(url, model, moves):
    """A day of 30 coins with 20 closes each and a prediction with intervals per coin; coin ``c07``
    has the widest band."""
    import datetime as dt

    import numpy as np

    from crypto_ml import storage

    storage.migrate(url)
    day = dt.date(2017, 7, 3)
    dates = pd.date_range(day - dt.timedelta(days=19), day, freq="D")
    for i in range(30):
        coin = f"c{i:02d}"
        closes = 100.0 + np.arange(20.0) * (i % 3)
        storage.store_prices(
            pd.DataFrame(
                {
                    "coin": coin,
                    "date": dates,
                    "open": closes,
                    "high": closes,
                    "low": closes,
                    "close": closes,
                    "volume": 1.0,
                    "market_cap": 1.0,
                }
            ),
            source="test",
            url=url,
        )
        last, move = float(closes[-1]), moves[i]
        values = list(np.linspace(last, last * (1 + move), 11)[1:])
        spread = 0.02 * (1 + i % 5) * (10 if coin == "c07" else 1)
        bands = {
            level: {
                "lower": [v * (1 - spread * k) for v in values],
                "upper": [v * (1 + spread * k) for v in values],
            }
            for level, k in (("80", 1), ("95", 2))
        }
        storage.store_prediction(
            coin=coin,
            as_of=day,
            model=model,
            version=1,
            horizon=10,
            values=values,
            last_close=last,
            intervals=bands,
            url=url,
        )
    return day


def _ink(png, box):
    """Share of non-white pixels in ``box`` = (top, bottom, left, right) fractions of the image."""
    import numpy as np
    from matplotlib.image import imread

    a = imread(png)[..., :3]
    h, w = a.shape[:2]
    top, bottom, left, right = box
    region = a[int(h * top) : int(h * bottom), int(w * left) : int(w * right)]
    return float((np.abs(region - 1).sum(-1) > 0.3).mean())


def test_the_day_plot_is_not_empty_for_the_naive_default(sqlite_url, tmp_path):
    from crypto_ml.storage.reporting import day_bands, plot_day, ranked_coins

    day = _store_day(sqlite_url, "naive", [0.0] * 30)
    bands = day_bands(day, url=sqlite_url)
    chosen, caption = ranked_coins(bands, 20)
    assert chosen[0] == "c07" and caption == "every expected move is 0.00%: the 20 widest 80% intervals"
    assert bands.loc[bands["coin"] == "c07", "lo80_pct"].iat[0] < -15  # percent of the last close
    png = plot_day(day, tmp_path / "naive.png", url=sqlite_url)
    # The ranked chart (top left) draws bands: the old plot's panel there was blank (0 % ink).
    assert _ink(png, (0.05, 0.4, 0.1, 0.45)) > 0.05
    assert _ink(png, (0.55, 0.95, 0.05, 0.95)) > 0.03  # the small multiples


def test_the_day_plot_of_a_model_that_moves_shows_the_run_asked_for(sqlite_url, tmp_path):
    from crypto_ml.storage.reporting import day_bands, plot_day, ranked_coins

    day = _store_day(sqlite_url, "naive", [0.0] * 30)
    _store_day(sqlite_url, "drift", [(i - 15) / 100 for i in range(30)])  # written last: the default run
    bands = day_bands(day, url=sqlite_url)
    assert set(bands["model"]) == {"drift"} and len(bands) == 30
    chosen, caption = ranked_coins(bands, 4)
    assert chosen == ["c00", "c01", "c29", "c02"] and caption == "4 largest expected moves"
    assert set(day_bands(day, model="naive", horizon=10, url=sqlite_url)["model"]) == {"naive"}
    png = plot_day(day, tmp_path / "drift.png", url=sqlite_url, top=4)
    assert _ink(png, (0.05, 0.4, 0.1, 0.45)) > 0.05
    empty = plot_day("2017-01-01", tmp_path / "none.png", url=sqlite_url)
    assert empty.exists()


@pytest.fixture
def url(sqlite_url):
    migrate(sqlite_url)
    return sqlite_url


def test_a_runs_summary_counts_its_own_model_and_horizon_only(url):
    for coin in ("btc", "eth"):
        for model, horizon in (("naive", 10), ("drift", 10), ("drift", 3)):
            store_prediction(
                coin=coin,
                as_of="2017-06-01",
                model=model,
                version=0,
                horizon=horizon,
                values=[100.0] * horizon,
                last_close=100.0,
                url=url,
            )
    assert len(day_table("2017-06-01", url=url)) == 6  # every prediction of the day
    drift = day_summary("2017-06-01", coins=["btc", "eth"], model="drift", horizon=10, url=url)
    assert (drift["predicted"], drift["missing"]) == (2, [])
    table = day_table("2017-06-01", model="drift", horizon=3, url=url)
    assert set(zip(table["model"], table["horizon"])) == {("drift", 3)} and len(table) == 2
    lstm = day_summary("2017-06-01", coins=["btc"], model="lstm", horizon=10, url=url)
    assert (lstm["predicted"], lstm["missing"]) == (0, ["btc"])


def test_the_table_prints_numbers_for_people():
    import pandas as pd

    from crypto_ml.storage.reporting import format_table

    text = format_table(
        pd.DataFrame(
            {"coin": ["ark", "bitcoin"], "last_close": [0.5821911, 2539.32], "tiny": [0.00001234, 0.0]}
        )
    )
    assert "0.582191" in text and "2,539.32" in text and "1.23e-05" in text and "e-01" not in text


def test_coins_without_an_interval_are_named_with_the_engines_reason(url):
    from crypto_ml.storage.reporting import interval_note, printed

    reason = "fitted on 12 closes, calibrating them needs at least 40"
    store_prediction(
        coin="new-coin",
        as_of="2017-06-01",
        model="naive",
        version=0,
        horizon=2,
        values=[1.0, 1.0],
        last_close=1.0,
        interval_reason=reason,
        url=url,
    )
    store_prediction(
        coin="bitcoin",
        as_of="2017-06-01",
        model="naive",
        version=0,
        horizon=2,
        values=[100.0, 100.0],
        last_close=100.0,
        url=url,
        intervals={
            "80": {"lower": [90.0, 85.0], "upper": [110.0, 115.0]},
            "95": {"lower": [80.0, 75.0], "upper": [120.0, 125.0]},
        },
    )
    table = day_table("2017-06-01", url=url)
    assert "interval_reason" not in printed(table).columns
    assert interval_note(table) == f"1 coin has no interval (-):\n  new-coin: {reason}"
    assert interval_note(table[table["coin"] == "bitcoin"]) is None
