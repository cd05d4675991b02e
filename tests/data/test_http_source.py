"""BinanceSource against a local server that answers in Binance's documented klines format."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from crypto_ml.data_loader import CryptoLoader, UnknownCoinError
from crypto_ml.sources import BinanceSource, SourceError

from binance_server import BinanceLikeServer


@pytest.fixture(scope="module")
def bundled():
    return CryptoLoader()


@pytest.fixture
def server(bundled):
    with BinanceLikeServer(bundled) as srv:
        yield srv


def source(server, coins, **kw):
    kw.setdefault("backoff", 0.01)
    kw.setdefault("retries", 3)
    kw.setdefault("timeout", 5)
    return BinanceSource(coins, base_url=server.url, **kw)


def test_daily_klines_round_trip_with_pagination(server, bundled):
    loader = CryptoLoader(source(server, ["bitcoin", "ethereum"]))
    assert loader.get_crypto_names() == ["bitcoin", "ethereum"]
    got = loader.get_df("bitcoin")
    want = bundled.get_df("bitcoin")
    assert len(got) == 1609  # more than one page of 1000
    assert server.requests["BTCUSDT"] == 2
    pd.testing.assert_series_equal(got["Close"], want["Close"], check_exact=False, rtol=1e-9)
    pd.testing.assert_series_equal(got["Date"], want["Date"])
    assert got["Market Cap"].isna().all()  # Binance publishes no market cap


def test_as_of_limits_the_request(server):
    loader = CryptoLoader(source(server, ["bitcoin"]), as_of="2017-01-31")
    assert loader.get_df("bitcoin")["Date"].max() == pd.Timestamp("2017-01-31")


def test_rate_limit_is_retried_honouring_retry_after(server):
    server.behaviour["BTCUSDT"] = {"rate_limit": 2, "retry_after": 1}
    started = time.monotonic()
    loader = CryptoLoader(source(server, ["bitcoin"], start="2017-09-01"))
    assert len(loader.get_df("bitcoin")) == 22
    assert server.requests["BTCUSDT"] == 3
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits


def test_persistent_rate_limit_fails_that_coin_only(server):
    server.behaviour["BTCUSDT"] = {"rate_limit": 100}
    loader = CryptoLoader(source(server, ["bitcoin", "ethereum"], start="2017-09-01"))
    assert loader.get_crypto_names() == ["ethereum"]
    reason = loader.report.failed_coins["bitcoin"]
    assert "bitcoin (BTCUSDT)" in reason and "429" in reason and "Too much request weight" in reason
    assert server.requests["BTCUSDT"] == 4  # first try + 3 retries
    with pytest.raises(UnknownCoinError, match="failed to load"):
        loader.get_df("bitcoin")


def test_timeout_is_retried_then_reported(server):
    server.behaviour["ETHUSDT"] = {"sleep": 1.0}
    loader = CryptoLoader(source(server, ["ethereum", "litecoin"], start="2017-09-01", timeout=0.2, retries=1))
    assert loader.get_crypto_names() == ["litecoin"]
    assert "timed out" in loader.report.failed_coins["ethereum"]
    assert server.requests["ETHUSDT"] == 2


def test_timeout_then_recovery(server):
    server.behaviour["ETHUSDT"] = {"sleep": 1.0, "sleep_times": 1}
    loader = CryptoLoader(source(server, ["ethereum"], start="2017-09-01", timeout=0.3, retries=2))
    assert len(loader.get_df("ethereum")) == 22


def test_server_errors_and_non_json(server):
    server.behaviour["BTCUSDT"] = {"status": 503}
    server.behaviour["ETHUSDT"] = {"not_json": True}
    loader = CryptoLoader(source(server, ["bitcoin", "ethereum", "litecoin"], start="2017-09-01", retries=1))
    assert loader.get_crypto_names() == ["litecoin"]
    assert "HTTP 503" in loader.report.failed_coins["bitcoin"]
    assert "not JSON" in loader.report.failed_coins["ethereum"]


def test_unknown_symbol_is_not_retried(server):
    loader = CryptoLoader(source(server, ["bitcoin", "notacoin"], start="2017-09-01"))
    reason = loader.report.failed_coins["notacoin"]
    assert "HTTP 400" in reason and "Invalid symbol. (code -1121)" in reason
    assert server.requests["NOTACOINUSDT"] == 1


def test_malformed_kline_is_quarantined_with_its_url(server):
    server.behaviour["BTCUSDT"] = {"garbage": True}
    loader = CryptoLoader(source(server, ["bitcoin"], start="2017-09-01"))
    [bad] = loader.report.errors
    assert bad.rule == "number_invalid" and "'12..5'" in bad.message
    assert "symbol=BTCUSDT" in bad.origin and bad.line == 0
    assert len(loader.get_df("bitcoin")) == 21


def test_every_coin_failing_is_an_error(server):
    with pytest.raises(SourceError, match="every coin failed"):
        CryptoLoader(source(server, ["nope1", "nope2"]))


def test_nothing_listening():
    with pytest.raises(SourceError, match="could not connect"):
        BinanceSource(["bitcoin"], base_url="http://127.0.0.1:9", retries=0).read()
