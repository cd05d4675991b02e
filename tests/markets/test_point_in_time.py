"""Point in time, universe included: a backfilled day's universe is the markets that traded that
day. A market delisted since is predicted from what is stored for the days it traded, reported as
``delisted on <exchange>, last candle <day>`` for the days after, and never read as a typo."""

from __future__ import annotations

import datetime as dt

import pytest

from crypto_ml import storage
from crypto_ml.data.ingest import ingest
from crypto_ml.markets import ENV_VAR, MarketConfig
from crypto_ml.pipeline.steps import poll, transform
from crypto_ml.testing.fake_kraken import FakeKraken, FakeMarket

TODAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
D = TODAY - dt.timedelta(days=1)
DELISTED = D - dt.timedelta(days=10)  # ETH/USD's last day on the exchange


@pytest.fixture(autouse=True)
def exchange_in_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "crypto-ml-market://kraken?top=1000&quote=USD")


@pytest.fixture
def kraken():
    with FakeKraken(
        [
            FakeMarket("BTC", "USD", first=dt.date(2026, 1, 1), price=100, volume=10),
            FakeMarket("ETH", "USD", first=dt.date(2026, 3, 1), price=3_000, volume=50),
            FakeMarket("SOL", "USD", first=dt.date(2026, 6, 1), price=150, volume=1),
        ],
        today=TODAY,
    ) as ex:
        yield ex


def market(ex, **extra):
    query = "&".join(f"{k}={v}" for k, v in {"rate_limit_ms": 0, **extra}.items())
    return MarketConfig.from_env_value(f"crypto-ml-market://kraken?{query}&api_url={ex.api_url}")


def delist_after_storing(kraken, url, m):
    """Days up to DELISTED are stored (a run on that day), then Kraken drops ETH/USD."""
    kraken.today = DELISTED + dt.timedelta(days=1)
    poll(DELISTED, market=m, url=url, now=NOW - (TODAY - kraken.today))
    kraken.today = TODAY
    kraken.delist("ETH/USD", DELISTED)
    assert storage.price_range(url=url)["eth-usd"][1] == DELISTED


def test_a_backfill_of_days_a_delisted_market_traded_predicts_it_from_what_is_stored(kraken, sqlite_url):
    m = market(kraken, symbols="BTC/USD,ETH/USD,SOL/USD")
    delist_after_storing(kraken, sqlite_url, m)
    for day in (DELISTED - dt.timedelta(days=1), DELISTED):  # a backfill of two past days
        out = poll(day, market=m, url=sqlite_url, now=NOW)
        assert out["coins"] == ["btc-usd", "eth-usd", "sol-usd"] and out["failed_coins"] == {}
        got = transform("eth-usd", day, url=sqlite_url, market=m)
        assert got["last_date"] == day.isoformat()
    # a day after the delisting: it did not trade then, and the reason says what happened
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usd", "sol-usd"]
    assert out["failed_coins"] == {
        "eth-usd": f"eth-usd (ETH/USD): delisted on kraken, last candle {DELISTED}; no candle for {D}"
    }


def test_a_delisting_is_not_a_typo(kraken, sqlite_url):
    m = market(kraken, symbols="BTC/USD,ETH/USD")
    delist_after_storing(kraken, sqlite_url, m)
    out = poll(D, market=market(kraken, symbols="BTC/USD,ETH/USD,ETC/USD"), url=sqlite_url, now=NOW)
    assert "delisted on kraken, last candle" in out["failed_coins"]["eth-usd"]
    assert "unknown symbol" in out["failed_coins"]["etc-usd"]
    assert "delisted" not in out["failed_coins"]["etc-usd"]


def test_a_top_n_backfill_keeps_the_markets_that_traded_that_day(kraken, sqlite_url):
    top = market(kraken, top=3, quote="USD")
    delist_after_storing(kraken, sqlite_url, top)
    loader_day = DELISTED - dt.timedelta(days=2)
    out = poll(loader_day, market=top, url=sqlite_url, now=NOW)
    assert "eth-usd" in out["coins"] and out["failed_coins"] == {}
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.pipeline.steps import market_source

    source = market_source(top, loader_day, stored=storage.price_range(url=sqlite_url), now=NOW)
    result = ingest(loader=CryptoLoader(source, as_of=loader_day), url=sqlite_url)
    assert result.notes["eth-usd"].startswith(
        f"eth-usd (ETH/USD): delisted on kraken, last candle {DELISTED}"
    )
    today = poll(D, market=top, url=sqlite_url, now=NOW)  # today's top 3: ETH/USD is gone
    assert "eth-usd" not in today["coins"] and today["failed_coins"] == {}


def test_a_backfill_before_a_listing_is_no_failure(kraken, sqlite_url):
    m = market(kraken, symbols="BTC/USD,SOL/USD")
    out = poll(dt.date(2026, 5, 1), market=m, url=sqlite_url, now=NOW)  # SOL/USD lists in June
    assert out["coins"] == ["btc-usd"] and out["failed_coins"] == {}
    assert storage.price_range(url=sqlite_url)["btc-usd"] == (dt.date(2026, 1, 1), dt.date(2026, 5, 1))
