"""A second exchange shape: ccxt's real ``kraken`` class against a Kraken-shaped server on
127.0.0.1 (:mod:`crypto_ml.testing.fake_kraken`: pair names like ``XXBTZUSD``, second timestamps,
at most the 720 most recent daily candles, errors inside HTTP 200 bodies, the forming candle last).

Every case goes through :func:`crypto_ml.pipeline.steps.poll`, the master DAG's first task, into a real
project database, with the setting written as a user would (an unencoded ``api_url``).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from crypto_ml import storage
from crypto_ml.markets import ENV_VAR, MarketConfig
from crypto_ml.pipeline.steps import poll
from crypto_ml.testing.fake_kraken import DEPTH, FakeKraken, FakeMarket

TODAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # today's candle is still forming
D = TODAY - dt.timedelta(days=1)


def markets():
    return [
        FakeMarket("BTC", "USD", first=dt.date(2013, 10, 6), price=120, volume=900),  # > 720 days
        FakeMarket("ETH", "USD", first=dt.date(2026, 3, 1), price=3_000, volume=5_000),
        FakeMarket("SOL", "USD", first=dt.date(2026, 6, 1), price=150, volume=20_000),
    ]


@pytest.fixture(autouse=True)
def exchange_in_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "crypto-ml-market://kraken?top=1000&quote=USD")


@pytest.fixture
def kraken():
    with FakeKraken(markets(), today=TODAY, slow_seconds=2.0) as ex:
        yield ex


def market(ex, symbols="BTC/USD,ETH/USD,SOL/USD", **extra):
    query = "&".join(
        f"{k}={v}"
        for k, v in {
            "symbols": symbols,
            "backoff": 0.01,
            "retries": 2,
            "rate_limit_ms": 0,
            "timeout": 1.0,
            **extra,
        }.items()
    )
    return MarketConfig.from_env_value(f"crypto-ml-market://kraken?{query}&api_url={ex.api_url}")


def stored_dates(url, coin):
    return [d.date() for d in storage.load_prices(coin, url=url)["Date"]]


def test_kraken_pairs_second_timestamps_and_the_forming_candle(kraken, sqlite_url):
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usd", "eth-usd", "sol-usd"] and out["failed_coins"] == {}
    eth = stored_dates(sqlite_url, "eth-usd")
    assert eth[0] == dt.date(2026, 3, 1) and eth[-1] == D and len(eth) == len(set(eth))
    assert TODAY not in eth  # the forming candle (Kraken's last one) is never stored
    closes = storage.load_prices("sol-usd", url=sqlite_url).set_index("Date")["Close"]
    want = kraken.market("SOL/USD").closes(TODAY)
    for day in (dt.date(2026, 6, 1), D):
        assert closes[str(day)] == pytest.approx(want[day.isoformat()], rel=1e-5)  # 5 decimals served
    assert set(kraken.ohlc_calls) == {"XXBTZUSD", "XETHZUSD", "SOLUSD"}  # Kraken's own pair names


def test_each_day_asks_only_what_is_missing_and_pages_by_the_since_cursor(kraken, sqlite_url):
    m = market(kraken, page_limit=100)  # the SOL market's 182 days come in pages of 100
    poll(D - dt.timedelta(days=3), market=m, url=sqlite_url, now=NOW)
    sol = stored_dates(sqlite_url, "sol-usd")
    assert sol[0] == dt.date(2026, 6, 1) and len(sol) == len(set(sol)) == (D - dt.date(2026, 6, 4)).days + 1
    assert kraken.ohlc_calls["SOLUSD"] >= 2
    kraken.reset_counts()
    again = poll(D - dt.timedelta(days=3), market=m, url=sqlite_url, now=NOW)
    assert again["inserted"] == 0 and sum(kraken.ohlc_calls.values()) == 0
    nxt = poll(D, market=m, url=sqlite_url, now=NOW)
    assert nxt["inserted"] == 9  # three new closed candles per coin
    assert dict(kraken.ohlc_calls) == {"XXBTZUSD": 1, "XETHZUSD": 1, "SOLUSD": 1}
    assert stored_dates(sqlite_url, "sol-usd")[-1] == D


def test_http_429_is_retried_after_retry_after(kraken, sqlite_url):
    kraken.add_fault("ETH/USD", "429")
    started = time.monotonic()
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert time.monotonic() - started >= 1.0
    assert out["failed_coins"] == {} and kraken.ohlc_calls["XETHZUSD"] == 2


def test_a_rate_limit_inside_an_http_200_body_is_retried(kraken, sqlite_url):
    kraken.add_fault("ETH/USD", "ratelimit", "busy")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and kraken.ohlc_calls["XETHZUSD"] == 3
    assert stored_dates(sqlite_url, "eth-usd")[0] == dt.date(2026, 3, 1)


def test_server_errors_then_success(kraken, sqlite_url):
    kraken.add_fault("SOL/USD", "502", "503")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and "sol-usd" in out["coins"]


def test_server_errors_past_the_retries_fail_that_coin_alone(kraken, sqlite_url):
    kraken.add_fault("SOL/USD", "500", "500", "500")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    reason = out["failed_coins"]["sol-usd"]
    assert "sol-usd (SOL/USD) on kraken" in reason and "after 3 attempts" in reason
    assert out["coins"] == ["btc-usd", "eth-usd"]


def test_a_timeout_fails_that_coin_alone(kraken, sqlite_url):
    kraken.add_fault("ETH/USD", "timeout", "timeout", "timeout")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    reason = out["failed_coins"]["eth-usd"]
    assert "eth-usd (ETH/USD) on kraken" in reason and "RequestTimeout after 3 attempts" in reason
    assert stored_dates(sqlite_url, "eth-usd") == []
    later = poll(D, market=market(kraken), url=sqlite_url, now=NOW)  # the next run gets it whole
    assert later["failed_coins"] == {} and stored_dates(sqlite_url, "eth-usd")[0] == dt.date(2026, 3, 1)


def test_a_malformed_body_fails_that_coin_alone(kraken, sqlite_url):
    kraken.add_fault("SOL/USD", "malformed", "malformed", "malformed")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    reason = out["failed_coins"]["sol-usd"]
    assert "sol-usd (SOL/USD) on kraken" in reason and "not JSON" in reason
    assert out["coins"] == ["btc-usd", "eth-usd"]


def test_an_error_inside_a_200_body_fails_that_coin_alone_with_the_exchanges_words(kraken, sqlite_url):
    kraken.add_fault("SOL/USD", "unknown")
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert "EQuery:Unknown asset pair" in out["failed_coins"]["sol-usd"]
    assert out["coins"] == ["btc-usd", "eth-usd"]


def test_an_unknown_symbol_fails_alone_with_its_exchange(kraken, sqlite_url):
    out = poll(D, market=market(kraken, "BTC/USD,NOPE/USD"), url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usd"]
    assert "nope-usd (NOPE/USD) on kraken" in out["failed_coins"]["nope-usd"]
    assert "unknown symbol" in out["failed_coins"]["nope-usd"]


def test_a_market_listed_in_the_middle_of_the_history(kraken, sqlite_url):
    kraken.list(FakeMarket("NEW", "USD", first=D - dt.timedelta(days=10), price=1.0))
    m = market(kraken, "BTC/USD,NEW/USD")
    kraken.today = D - dt.timedelta(days=19)  # the day after: not listed yet
    before = poll(D - dt.timedelta(days=20), market=m, url=sqlite_url, now=NOW - dt.timedelta(days=19))
    assert before["coins"] == ["btc-usd"]
    kraken.today = TODAY
    after = poll(D, market=m, url=sqlite_url, now=NOW)
    assert after["coins"] == ["btc-usd", "new-usd"] and after["failed_coins"] == {}
    assert stored_dates(sqlite_url, "new-usd")[0] == D - dt.timedelta(days=10)


def test_a_delisted_market_leaves_the_listing_and_its_history_stays(kraken, sqlite_url):
    m = market(kraken)
    poll(D - dt.timedelta(days=5), market=m, url=sqlite_url, now=NOW)
    kept = stored_dates(sqlite_url, "eth-usd")
    kraken.delist("ETH/USD", D - dt.timedelta(days=3))  # Kraken drops the pair from AssetPairs
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usd", "sol-usd"]
    assert out["failed_coins"]["eth-usd"] == (
        f"eth-usd (ETH/USD): delisted on kraken, last candle {kept[-1]}; no candle for {D}"
    )
    assert stored_dates(sqlite_url, "eth-usd") == kept


def test_the_depth_cap_is_kraken_s_not_the_clients(kraken):
    """The fake serves the 720 most recent candles whatever ``since`` asks, as Kraken does."""
    import ccxt

    ex = ccxt.kraken({"enableRateLimit": False})
    ex.urls["api"] = {"public": kraken.api_url, "private": kraken.api_url}
    since = int(dt.datetime(2014, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    candles = ex.fetch_ohlcv("BTC/USD", "1d", since)
    assert len(candles) == DEPTH
    assert dt.datetime.fromtimestamp(candles[-1][0] / 1000, dt.UTC).date() == TODAY  # forming, last
    assert dt.datetime.fromtimestamp(candles[0][0] / 1000, dt.UTC).date() == TODAY - dt.timedelta(
        days=DEPTH - 1
    )
