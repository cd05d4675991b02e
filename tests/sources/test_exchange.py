"""The daily poll on a live market: ccxt against a local Binance-compatible exchange (no network).

Every case goes through :func:`crypto_ml.pipeline.steps.poll`, the master DAG's first task, into a real
project database: closed candles only, only what the DB lacks, nothing stored twice, one failing
coin named with its exchange while the other coins are done.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from crypto_ml import storage
from crypto_ml.markets import ENV_VAR, MarketConfig, MarketConfigError, coin_id, symbol_of
from crypto_ml.pipeline.steps import PipelineInputError, poll, transform
from crypto_ml.sources.base import SourceError
from crypto_ml.testing.fake_exchange import FakeExchange, FakeMarket

TODAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)  # today's candle is still forming
D = dt.date(2026, 11, 27)


def markets():
    return [
        FakeMarket("BTC", first=dt.date(2023, 6, 1), price=30_000, volume=900),  # > 1 page of 1000
        FakeMarket("ETH", first=dt.date(2025, 1, 1), price=3_000, volume=5_000),
        FakeMarket("SOL", first=dt.date(2025, 6, 1), price=150, volume=20_000),
    ]


@pytest.fixture(autouse=True)
def exchange_in_the_environment(monkeypatch):
    """What the DAG parser sees: an exchange market whose universe is resolved each day."""
    monkeypatch.setenv(ENV_VAR, "crypto-ml-market://binance?top=1000")


@pytest.fixture
def exchange():
    with FakeExchange(markets(), today=TODAY, slow_seconds=2.0) as ex:
        yield ex


def market(ex, symbols="BTC/USDT,ETH/USDT,SOL/USDT", **extra):
    extra = {
        "symbols": symbols,
        "api_url": ex.api_url,
        "backoff": 0.01,
        "retries": 2,
        "timeout": 1.0,
        **extra,
    }
    return MarketConfig.from_fields("binance", extra, origin="test")


def stored_dates(url, coin):
    return [d.date() for d in storage.load_prices(coin, url=url)["Date"]]


def test_coin_ids_map_symbols_both_ways():
    assert coin_id("BTC/USDT") == "btc-usdt" and symbol_of("btc-usdt") == "BTC/USDT"
    assert coin_id("1000SATS/USDT") == "1000sats-usdt"
    with pytest.raises(MarketConfigError, match="not a spot market symbol"):
        coin_id("BTC/USDT:USDT")


def test_first_poll_pages_through_history_then_each_day_asks_only_what_is_missing(exchange, sqlite_url):
    m = market(exchange)
    first = poll(D, market=m, url=sqlite_url, now=NOW)
    assert first["history_day"] == D.isoformat()
    assert first["coins"] == ["btc-usdt", "eth-usdt", "sol-usdt"] and first["failed_coins"] == {}
    btc = stored_dates(sqlite_url, "btc-usdt")
    assert btc[0] == dt.date(2023, 6, 1) and btc[-1] == D and len(btc) == len(set(btc)) == 1276
    assert exchange.klines_calls["BTCUSDT"] == 2  # 1,276 days: two pages of at most 1,000
    # The stored closes are the exchange's, and nothing after the run's day.
    closes = storage.load_prices("eth-usdt", url=sqlite_url).set_index("Date")["Close"]
    assert closes[str(D)] == pytest.approx(exchange.markets["ETHUSDT"].closes(TODAY)[D.isoformat()])
    # Exchange candles carry no market cap: stored empty.
    assert storage.load_prices("btc-usdt", url=sqlite_url)["Market Cap"].isna().all()

    exchange.reset_counts()
    again = poll(D, market=m, url=sqlite_url, now=NOW)  # a re-run: nothing lacking, nothing asked
    assert again["inserted"] == 0 and again["coins"] == first["coins"]
    assert sum(exchange.klines_calls.values()) == 0
    nxt = poll(D + dt.timedelta(days=1), market=m, url=sqlite_url, now=NOW)
    assert nxt["inserted"] == 3  # one new candle per coin
    assert dict(exchange.klines_calls) == {"BTCUSDT": 1, "ETHUSDT": 1, "SOLUSDT": 1}
    assert stored_dates(sqlite_url, "btc-usdt")[-1] == D + dt.timedelta(days=1)
    assert storage.count_rows("prices", url=sqlite_url) == sum(
        len(stored_dates(sqlite_url, c)) for c in first["coins"]
    )


def test_the_candle_still_forming_is_never_stored(exchange, sqlite_url):
    out = poll(TODAY, market=market(exchange), url=sqlite_url, now=NOW)
    yesterday = TODAY - dt.timedelta(days=1)
    assert out["history_day"] == yesterday.isoformat()  # today's candle has not closed
    for coin in out["coins"]:
        assert stored_dates(sqlite_url, coin)[-1] == yesterday


def test_backfill_is_point_in_time(exchange, sqlite_url):
    m = market(exchange)
    early = D - dt.timedelta(days=30)
    out = poll(early, market=m, url=sqlite_url, now=NOW)  # a new deployment's first backfilled day
    assert out["history_day"] == early.isoformat()
    assert max(stored_dates(sqlite_url, "sol-usdt")) == early  # never a candle after its day
    poll(early + dt.timedelta(days=1), market=m, url=sqlite_url, now=NOW)
    assert max(stored_dates(sqlite_url, "sol-usdt")) == early + dt.timedelta(days=1)
    # transform for that day sees exactly the data up to it, even with later days stored.
    poll(D, market=m, url=sqlite_url, now=NOW)
    got = transform("sol-usdt", early, url=sqlite_url, market=m)
    assert got["last_date"] == early.isoformat()


def test_rate_limit_is_retried_after_retry_after(exchange, sqlite_url):
    exchange.add_fault("ETH/USDT", "429")
    started = time.monotonic()
    out = poll(D, market=market(exchange), url=sqlite_url, now=NOW)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 beats the 0.01 s backoff
    assert out["failed_coins"] == {} and "eth-usdt" in out["coins"]
    assert exchange.klines_calls["ETHUSDT"] == 2


def test_server_errors_then_success(exchange, sqlite_url):
    exchange.add_fault("BTC/USDT", "500", "503")
    out = poll(D, market=market(exchange), url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and "btc-usdt" in out["coins"]
    dates = stored_dates(sqlite_url, "btc-usdt")
    assert len(dates) == len(set(dates))


def test_a_timeout_fails_that_coin_alone(exchange, sqlite_url):
    exchange.add_fault("ETH/USDT", "timeout", "timeout", "timeout")
    out = poll(D, market=market(exchange), url=sqlite_url, now=NOW)
    reason = out["failed_coins"]["eth-usdt"]
    assert "eth-usdt (ETH/USDT) on binance" in reason and "RequestTimeout after 3 attempts" in reason
    assert out["coins"] == ["btc-usdt", "sol-usdt"]
    assert stored_dates(sqlite_url, "eth-usdt") == []
    # The next run fetches the coin's whole history (the DB still lacks it), once.
    later = poll(D + dt.timedelta(days=1), market=market(exchange), url=sqlite_url, now=NOW)
    assert later["failed_coins"] == {} and "eth-usdt" in later["coins"]
    eth = stored_dates(sqlite_url, "eth-usdt")
    assert eth[0] == dt.date(2025, 1, 1) and len(eth) == len(set(eth))


def test_malformed_json_fails_that_coin_alone(exchange, sqlite_url):
    exchange.add_fault("SOL/USDT", "malformed", "malformed", "malformed")
    out = poll(D, market=market(exchange), url=sqlite_url, now=NOW)
    reason = out["failed_coins"]["sol-usdt"]
    assert "sol-usdt (SOL/USDT) on binance" in reason and "not JSON" in reason
    assert out["coins"] == ["btc-usdt", "eth-usdt"]
    assert storage.count_rows("quarantined_rows", url=sqlite_url) == 0


def test_an_unknown_symbol_fails_alone_with_its_exchange(exchange, sqlite_url):
    out = poll(D, market=market(exchange, "BTC/USDT,NOPE/USDT"), url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usdt"]
    assert out["failed_coins"] == {
        "nope-usdt": "nope-usdt (NOPE/USDT) on binance: unknown symbol (no such market on binance; "
        "never stored: a typo, or not listed yet)"
    }
    with pytest.raises(SourceError, match="no symbol of the universe is a market on binance"):
        poll(D, market=market(exchange, "NOPE/USDT"), url=sqlite_url, now=NOW)


def test_a_market_listed_in_the_middle_of_the_history(exchange, sqlite_url):
    exchange.list(FakeMarket("NEW", first=D - dt.timedelta(days=10), price=1.0))
    m = market(exchange, "BTC/USDT,NEW/USDT")
    before = poll(D - dt.timedelta(days=20), market=m, url=sqlite_url, now=NOW)
    assert before["coins"] == ["btc-usdt"] and before["failed_coins"] == {}
    after = poll(D, market=m, url=sqlite_url, now=NOW)
    assert after["coins"] == ["btc-usdt", "new-usdt"]
    assert stored_dates(sqlite_url, "new-usdt")[0] == D - dt.timedelta(days=10)


def test_overlapping_pages_and_duplicate_candles_store_nothing_twice(exchange, sqlite_url):
    m = market(exchange, page_limit=100)  # many pages
    exchange.add_fault("ETH/USDT", "overlap", "overlap", "duplicate", "overlap")
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {}
    eth = stored_dates(sqlite_url, "eth-usdt")
    assert len(eth) == len(set(eth)) == (D - dt.date(2025, 1, 1)).days + 1
    assert exchange.klines_calls["ETHUSDT"] >= 7


def test_a_gap_is_reported_not_filled(exchange, sqlite_url):
    m = market(exchange, "BTC/USDT")
    poll(D - dt.timedelta(days=5), market=m, url=sqlite_url, now=NOW)
    exchange.markets["BTCUSDT"].missing = {D - dt.timedelta(days=3), D - dt.timedelta(days=4)}
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert any("date_gap" in w and "btc-usdt" in w for w in out["warnings"]), out["warnings"]
    dates = stored_dates(sqlite_url, "btc-usdt")
    assert D - dt.timedelta(days=3) not in dates and D in dates


def test_a_delisted_market_stops_and_its_history_stays(exchange, sqlite_url):
    m = market(exchange)
    poll(D - dt.timedelta(days=5), market=m, url=sqlite_url, now=NOW)
    kept = stored_dates(sqlite_url, "eth-usdt")
    exchange.delist("ETH/USDT", D - dt.timedelta(days=3))
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert out["coins"] == ["btc-usdt", "sol-usdt"]
    assert out["failed_coins"] == {  # a delisting, not an unknown symbol: its history is stored
        "eth-usdt": f"eth-usdt (ETH/USDT): delisted on binance, last candle {kept[-1]}; no candle for {D}"
    }
    assert stored_dates(sqlite_url, "eth-usdt") == kept
    # a backfill of a day it traded: in that day's universe, predicted from what is stored
    back = poll(kept[-1], market=m, url=sqlite_url, now=NOW)
    assert "eth-usdt" in back["coins"] and "eth-usdt" not in back["failed_coins"]
    # In a top-N universe a delisted market simply drops out.
    top = MarketConfig.from_fields("binance", {"top": 3, "api_url": exchange.api_url}, origin="t")
    out = poll(D, market=top, url=sqlite_url, now=NOW)
    assert "eth-usdt" not in out["coins"] and out["failed_coins"] == {}


def test_top_n_universe_is_resolved_each_day(exchange, sqlite_url):
    top = MarketConfig.from_fields("binance", {"top": 2, "api_url": exchange.api_url}, origin="t")
    out = poll(D, market=top, url=sqlite_url, now=NOW)
    ranked = sorted(exchange.tickers(), key=lambda t: -float(t["quoteVolume"]))
    largest = sorted(coin_id(t["symbol"][:-4] + "/USDT") for t in ranked[:2])
    assert out["coins"] == largest  # the two largest 24 h quote volumes
    exchange.list(FakeMarket("HOT", first=D - dt.timedelta(days=40), price=10.0, volume=10**7))
    out = poll(D + dt.timedelta(days=1), market=top, url=sqlite_url, now=NOW)
    assert "hot-usdt" in out["coins"] and len(out["coins"]) == 2  # a new listing joins
    assert stored_dates(sqlite_url, "hot-usdt")[0] == D - dt.timedelta(days=40)


def test_a_single_coin_run_fetches_its_own_history_or_names_the_universe(exchange, sqlite_url):
    m = market(exchange, "BTC/USDT,ETH/USDT")
    got = transform("eth-usdt", D, url=sqlite_url, market=m)
    assert got["last_date"] == D.isoformat() and got["first_date"] == "2025-01-01"
    with pytest.raises(PipelineInputError, match="sol-usdt: not in the universe of exchange binance"):
        transform("sol-usdt", D, url=sqlite_url, market=m)


@pytest.mark.parametrize(
    ("host", "extra", "words"),
    [
        ("binance", {}, "either extra.symbols"),
        ("binance", {"symbols": "BTC/USDT", "top": 5}, "not both"),
        ("binance", {"symbols": "BTC-USDT"}, "not a spot market symbol"),
        ("binance", {"top": "many"}, "top='many' is not a number"),
        ("binance", {"symbol": "BTC/USDT"}, "unknown extra field(s) ['symbol']"),
        ("csv", {}, "needs extra.path"),
        ("Bin ance", {"top": 1}, "is not 'replay', 'csv' or a ccxt exchange id"),
    ],
)
def test_a_malformed_market_setting_says_what_is_wrong(host, extra, words):
    with pytest.raises(MarketConfigError) as err:
        MarketConfig.from_fields(host, extra, origin="Connection 'crypto_ml_market'")
    assert words in str(err.value) and "crypto_ml_market" in str(err.value)


def test_an_exchange_ccxt_does_not_know_is_named(sqlite_url):
    m = MarketConfig.from_fields("binanse", {"top": 3}, origin="t")
    with pytest.raises(
        SourceError, match="'binanse' is not an exchange ccxt .* supports; did you mean binance"
    ):
        poll(D, market=m, url=sqlite_url, now=NOW)


def test_the_environment_setting_uri_and_json_forms():
    uri = MarketConfig.from_env_value("crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT")
    assert (uri.kind, uri.exchange, uri.symbols) == ("exchange", "binance", ("BTC/USDT", "ETH/USDT"))
    assert uri.parse_time_coin_ids() == ["btc-usdt", "eth-usdt"]
    js = MarketConfig.from_env_value(
        '{"conn_type": "crypto_ml_market", "host": "kraken", "extra": {"top": 20, "quote": "EUR"}}'
    )
    assert (js.exchange, js.top, js.quote, js.parse_time_coin_ids()) == ("kraken", 20, "EUR", None)
    assert MarketConfig.from_env_value("crypto-ml-market://replay").kind == "replay"
    with pytest.raises(MarketConfigError, match="expected 'crypto_ml_market'"):
        MarketConfig.from_env_value("postgres://binance")


def test_a_market_the_dag_parser_cannot_see_fails_the_poll_at_once(exchange, sqlite_url, monkeypatch):
    """Defined only in the UI (the metadata DB), the parser validates coins against the replay's:
    the poll says so instead of letting every coin's trigger be refused."""
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(PipelineInputError) as err:
        poll(D, market=market(exchange), url=sqlite_url, now=NOW)
    assert "lists coins the DAG parser does not know (btc-usdt, eth-usdt, sol-usdt)" in str(err.value)
    assert "environment's market (replay of the bundled 2013-2017 history; default" in str(err.value)
