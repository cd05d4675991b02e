"""The view opens on the day: summary, the coins that matter, the paper book, the leaderboard."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from crypto_ml import storage
from crypto_ml.trading.brokers import PaperBroker
from crypto_ml.web import create_app
from tests.web.day_data import DAY, fill_day


@pytest.fixture
def day_url(sqlite_url) -> str:
    fill_day(sqlite_url)
    return sqlite_url


def table_rows(page: str, table: str) -> list[list[str]]:
    """The cells' text of each body row of the table ``id=table``."""
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S)[1]
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def cards(page: str) -> dict[str, str]:
    """The summary cards: ``{text: number}``."""
    found = re.findall(r'<div class="card"><b[^>]*>(.*?)</b><span>(.*?)</span></div>', page, re.S)
    return {re.sub(r"<[^>]+>", "", text): number for number, text in found}


def test_the_view_opens_on_a_summary_of_the_day(day_url):
    page = TestClient(create_app(day_url)).get("/").text
    assert f"The day: {DAY}" in page
    shown = cards(page)
    assert shown["coins predicted"] == "5"
    assert shown["predictions: naive 5"] == "5"  # of the day only, not the day before's
    assert shown["decided to trade, 5 stored only"] == "0"
    assert shown["trade requests: none"] == "0"
    assert shown["open paper positions, 1,850.00 USD at market"] == "2"  # 100 up1 at 11 + 250 up2 at 3
    # bought 100 up1 at 10 and 250 up2 at 4 (1,000 USD each); marked at the day's closes
    book = PaperBroker(day_url).account(marks={}, as_of=DAY)
    assert book.equity - book.capital == pytest.approx(100 * 1.0 - 250 * 1.0)
    assert shown["paper P&amp;L (-0.75%): equity 19,850.00, cash 18,000.00, capital 20,000.00"] == "-150.00"
    positions = table_rows(page, "positions")
    assert [r[0] for r in positions] == ["up1", "up2"]
    assert positions[0][3:] == ["11.00", "1,100.00", "+100.00"] and positions[1][5] == "-250.00"


def test_the_coins_that_matter_under_the_naive_model_are_the_widest_intervals(day_url):
    page = TestClient(create_app(day_url)).get("/").text
    assert "naive, horizon 10 days: every expected move is 0.00%: the 5 widest 80% intervals" in page
    ranked = table_rows(page, "ranked")
    assert ranked[0][0] == "wide" and ranked[0][1] == "+0.00%" and ranked[0][2] == "-50.0% .. +50.0%"
    assert {r[4] for r in ranked} == {"stored"}
    # plots: bitcoin first, then the day's ranked coins
    plots = re.findall(r'<img src="plot\.png\?coin=([^"]+)"', page)
    assert plots[:2] == ["bitcoin", "wide"] and len(plots) == 4 and len(set(plots)) == 4


def test_the_leaderboard_says_when_nothing_is_evaluated_and_ranks_what_is(day_url):
    client = TestClient(create_app(day_url))
    page = client.get("/").text
    assert "No model evaluation is stored yet." in page and 'id="leaderboard"' not in page
    # what a backtest given a model store records: a version per fold with its scores
    for coin, model, mase, direction in (
        ("up1", "drift", 1.4, 0.5),
        ("up2", "drift", 1.6, 0.7),
        ("up1", "naive", 1.2, 0.0),
        ("up2", "naive", 1.3, 0.1),
        ("up1", "linear", None, None),
    ):
        metrics = {"mae": 1.0, "mape": 10.0, "mase": mase, "direction": direction}
        storage.record_model_version(
            coin=coin,
            model=model,
            train_start="2017-01-01",
            train_end="2017-06-01",
            n_obs=150,
            params={},
            metrics=metrics,
            artifact_path=None,
            fingerprint=f"{coin}-{model}",
            url=day_url,
        )
    storage.record_model_version(
        coin="up1",
        model="ar",
        train_start="2017-01-01",
        train_end="2017-06-01",
        n_obs=150,
        params={},
        metrics={},
        artifact_path=None,
        fingerprint="x",
        url=day_url,
    )  # a production training: no evaluation
    page = client.get("/").text
    board = table_rows(page, "leaderboard")
    assert [r[1] for r in board] == ["naive", "drift", "linear"]
    assert board[0] == ["1", "naive", "2", "1.250", "10.00%", "5%", "2017-06-01"]
    assert board[2][3:6] == ["—", "10.00%", "—"]
    assert "No model evaluation is stored yet." not in page


def test_a_coin_page_has_no_day_summary(day_url):
    page = TestClient(create_app(day_url)).get("/", params={"coin": "up1"}).text
    assert "The day:" not in page and page.count("<img ") == 1
