"""The Crypto-ML view shows each forecast's stored prediction intervals (table and plot)."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto_ml import storage
from crypto_ml.web import create_app

START = dt.date(2024, 1, 1)


def fill(url: str, *, with_intervals: bool) -> None:
    storage.migrate(url)
    dates = pd.date_range(START, periods=60, freq="D")
    closes = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, len(dates)))
    storage.store_prices(
        pd.DataFrame(
            {
                "coin": "bitcoin",
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
    last = float(closes[-1])
    steps = np.arange(1, 11)
    bands = {
        "80": {
            "lower": list(last * (1 - 0.02 * np.sqrt(steps))),
            "upper": list(last * (1 + 0.02 * np.sqrt(steps))),
        },
        "95": {
            "lower": list(last * (1 - 0.04 * np.sqrt(steps))),
            "upper": list(last * (1 + 0.04 * np.sqrt(steps))),
        },
    }
    storage.store_prediction(
        coin="bitcoin",
        as_of=START + dt.timedelta(days=59),
        model="ar",
        version=0,
        horizon=10,
        values=[last] * 10,
        last_close=last,
        intervals=bands if with_intervals else None,
        url=url,
    )


def pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.mark.parametrize("with_intervals", [True, False])
def test_table_lists_the_intervals(sqlite_url, with_intervals):
    fill(sqlite_url, with_intervals=with_intervals)
    page = TestClient(create_app(sqlite_url)).get("/").text
    assert "<th>80% interval</th><th>95% interval</th>" in page
    row = re.search(r'<table id="predictions">.*?<tbody>(.*?)</tbody>', page, re.S)[1]
    if with_intervals:
        assert re.search(
            r"<td class=\"n iv\">[\d.,]+ – [\d.,]+</td><td class=\"n iv\">[\d.,]+ – [\d.,]+</td>", row
        )
    else:
        assert '<td class="n iv">—</td><td class="n iv">—</td>' in row
    api = TestClient(create_app(sqlite_url)).get("/api/predictions").json()["predictions"][0]
    assert (api["intervals"] is not None) == with_intervals


def test_plot_shades_the_interval_bands(sqlite_url, tmp_path):
    """Same data with and without intervals: the plot with intervals has many more pixels in the
    forecast's (blue, #2563eb) tint where the band is, right of the last close."""
    other = f"sqlite:///{tmp_path / 'plain.db'}"
    fill(sqlite_url, with_intervals=True)
    fill(other, with_intervals=False)
    banded = pixels(TestClient(create_app(sqlite_url)).get("/plot.png", params={"coin": "bitcoin"}).content)
    plain = pixels(TestClient(create_app(other)).get("/plot.png", params={"coin": "bitcoin"}).content)

    def tinted(img: np.ndarray) -> int:
        rgb = img[..., :3]
        blueish = (rgb[..., 2] > rgb[..., 0] + 0.05) & (rgb[..., 2] > rgb[..., 1] + 0.02)
        return int(blueish.sum())

    assert tinted(banded) > tinted(plain) + 2000
