"""Several markets in one deployment: a Binance-shaped and a Kraken-shaped exchange on 127.0.0.1,
each its own Connection, named by the pipeline's ``crypto_ml_market`` (``multi``); one poll, coin
ids that name their market, a member that fails failing its own coins only.

The whole stack with both shapes, three days and a backfill: ``test_markets_stack.py``."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3

import pytest

from crypto_ml import storage
from crypto_ml.markets import ENV_VAR, Market, MarketConfigError, MultiMarket, env_market
from crypto_ml.pipeline.steps import PipelineInputError, poll, transform
from crypto_ml.testing import fake_exchange, fake_kraken

TODAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
D = TODAY - dt.timedelta(days=1)
MULTI = "crypto-ml-market://multi?markets=market_binance,market_kraken"


@pytest.fixture
def exchanges():
    on_binance = [
        fake_exchange.FakeMarket("BTC", first=dt.date(2026, 1, 1), price=60_000),
        fake_exchange.FakeMarket("ETH", first=dt.date(2026, 6, 1), price=3_000),
    ]
    on_kraken = [
        fake_kraken.FakeMarket("BTC", "USDT", first=dt.date(2026, 2, 1), price=61_000, seed=3),
        fake_kraken.FakeMarket("SOL", "USD", first=dt.date(2026, 7, 1), price=150, seed=4),
    ]
    with (
        fake_exchange.FakeExchange(on_binance, today=TODAY) as binance,
        fake_kraken.FakeKraken(on_kraken, today=TODAY) as kraken,
    ):
        yield binance, kraken


def _settings(monkeypatch, binance_url: str, kraken_url: str) -> None:
    monkeypatch.setenv(ENV_VAR, MULTI)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKET_BINANCE",
        json.dumps(
            {
                "conn_type": "crypto_ml_market",
                "host": "binance",
                "extra": {
                    "symbols": "BTC/USDT,ETH/USDT",
                    "api_url": binance_url,
                    "backoff": 0.01,
                    "retries": 0,
                    "timeout": 1,
                },
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKET_KRAKEN",  # unencoded, as the README writes it
        "crypto-ml-market://kraken?symbols=BTC/USDT,SOL/USD&backoff=0.01&retries=0"
        f"&rate_limit_ms=0&timeout=1&api_url={kraken_url}",
    )


@pytest.fixture
def two_markets(exchanges, monkeypatch):
    binance, kraken = exchanges
    _settings(monkeypatch, binance.api_url, kraken.api_url)
    return binance, kraken


def _labels(url: str) -> dict[str, set[str]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT coin, source FROM prices").fetchall()
    out: dict[str, set[str]] = {}
    for coin, source in rows:
        out.setdefault(coin, set()).add(source)
    return out


def test_the_setting_names_each_markets_connection_and_coin_ids_name_the_market(two_markets):
    market = env_market()
    assert isinstance(market, MultiMarket) and market.is_exchange
    assert [m.exchange for m in market.members] == ["binance", "kraken"]
    assert market.parse_time_coin_ids() == [
        "binance.btc-usdt",
        "binance.eth-usdt",
        "kraken.btc-usdt",
        "kraken.sol-usd",
    ]
    assert market.market_of("kraken.btc-usdt").symbol_of("kraken.btc-usdt") == "BTC/USDT"
    assert market.describe().startswith(
        "2 markets: exchange binance (BTC/USDT, ETH/USDT) via ccxt; exchange kraken"
    )
    with pytest.raises(MarketConfigError, match=r"'btc-usdt' names none of the markets .*binance\.btc-usdt"):
        market.market_of("btc-usdt")


def test_the_tasks_hook_reads_the_same_markets_through_airflows_connections(two_markets):
    from crypto_ml.hooks.market import CryptoMarketHook

    assert CryptoMarketHook().get_market() == env_market()


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ({}, r"AIRFLOW_CONN_MARKET_BINANCE is not set: Connection 'market_binance' is named as a market"),
        (
            {
                "MARKET_BINANCE": "crypto-ml-market://csv?path=/x",
                "MARKET_KRAKEN": "crypto-ml-market://kraken?top=3",
            },
            r"member 'market_binance' is CSV files in /x; the markets of a multi market are exchanges",
        ),
        (
            {
                "MARKET_BINANCE": "crypto-ml-market://kraken?top=3",
                "MARKET_KRAKEN": "crypto-ml-market://kraken?top=5",
            },
            r"markets 'market_binance' and 'market_kraken' are both kraken; "
            r".* list all of its symbols in one",
        ),
        (
            {"MARKET_BINANCE": MULTI, "MARKET_KRAKEN": "crypto-ml-market://kraken?top=5"},
            r"names markets in turn \(.market_binance.\); the markets of a multi market are exchanges",
        ),
    ],
)
def test_a_member_that_cannot_be_read_fails_the_setting_naming_it(monkeypatch, members, error):
    for name in ("MARKET_BINANCE", "MARKET_KRAKEN"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{name}", raising=False)
    for name, value in members.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", value)
    with pytest.raises(MarketConfigError, match=error):
        Market.from_env_value(MULTI)


def test_the_hook_fails_naming_a_member_connection_that_does_not_exist(monkeypatch):
    from crypto_ml.hooks.market import CryptoMarketHook

    monkeypatch.setenv(ENV_VAR, "crypto-ml-market://multi?markets=nowhere_market")
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE_MARKET", raising=False)
    with pytest.raises(
        MarketConfigError,
        match=r"Connection 'nowhere_market' \(a market of the multi market\) "
        "does not exist",
    ):
        CryptoMarketHook().get_market()


@pytest.mark.parametrize(
    "text",
    [
        "crypto-ml-market://multi",
        "crypto-ml-market://multi?markets=a,a",
        "crypto-ml-market://multi?markets=a&symbols=BTC/USDT",
    ],
)
def test_a_malformed_multi_setting_fails_naming_the_field(text):
    with pytest.raises(MarketConfigError, match="extra"):
        Market.from_env_value(text)


def test_one_poll_stores_both_exchanges_the_same_pair_as_two_coins_each_labelled(two_markets, sqlite_url):
    out = poll(D, url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {}
    assert out["coins"] == ["binance.btc-usdt", "binance.eth-usdt", "kraken.btc-usdt", "kraken.sol-usd"]
    assert _labels(sqlite_url) == {
        "binance.btc-usdt": {"ccxt:binance"},
        "binance.eth-usdt": {"ccxt:binance"},
        "kraken.btc-usdt": {"ccxt:kraken"},
        "kraken.sol-usd": {"ccxt:kraken"},
    }
    on_binance = storage.load_prices("binance.btc-usdt", url=sqlite_url)
    on_kraken = storage.load_prices("kraken.btc-usdt", url=sqlite_url)
    assert on_binance["Date"].iat[0].date() == dt.date(2026, 1, 1)
    assert on_kraken["Date"].iat[0].date() == dt.date(2026, 2, 1)
    assert on_binance["Date"].iat[-1].date() == on_kraken["Date"].iat[-1].date() == D
    assert on_binance["Close"].iat[-1] != pytest.approx(on_kraken["Close"].iat[-1], rel=1e-3)
    rows = storage.count_rows("prices", url=sqlite_url)
    again = poll(D, url=sqlite_url, now=NOW)  # a re-run: nothing twice, no candle asked again
    assert again["inserted"] == 0 and storage.count_rows("prices", url=sqlite_url) == rows
    assert again["api_calls"] < out["api_calls"]


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_an_exchange_that_is_down_fails_its_own_coins_and_the_other_goes_on(
    exchanges, monkeypatch, sqlite_url
):
    binance, _ = exchanges
    _settings(monkeypatch, binance.api_url, _closed_port())
    out = poll(D, url=sqlite_url, now=NOW)
    assert out["coins"] == ["binance.btc-usdt", "binance.eth-usdt"]
    assert sorted(out["failed_coins"]) == ["kraken.btc-usdt", "kraken.sol-usd"]
    assert all(r.startswith("ccxt:kraken: ") for r in out["failed_coins"].values()), out["failed_coins"]


def test_every_exchange_down_fails_the_poll_naming_each(monkeypatch, sqlite_url):
    from crypto_ml.sources.base import SourceError

    _settings(monkeypatch, _closed_port(), _closed_port())
    with pytest.raises(SourceError, match=r"every market failed: ccxt:binance: .*; ccxt:kraken: "):
        poll(D, url=sqlite_url, now=NOW)


def test_a_coin_run_by_hand_reads_only_its_own_exchange(two_markets, sqlite_url):
    binance, kraken = two_markets
    binance.reset_counts()
    kraken.reset_counts()
    out = transform("kraken.sol-usd", D, url=sqlite_url, now=NOW)
    assert out["last_date"] == D.isoformat() and out["rows"] == (D - dt.date(2026, 7, 1)).days + 1
    assert sum(binance.requests.values()) == 0 and sum(kraken.requests.values()) > 0
    assert set(_labels(sqlite_url)) == {"kraken.sol-usd"}
    with pytest.raises(MarketConfigError, match="names none of the markets"):
        transform("sol-usd", D, url=sqlite_url, now=NOW)
    with pytest.raises(PipelineInputError, match=r"kraken.nope-usd: not in the universe of exchange kraken"):
        transform("kraken.nope-usd", D, url=sqlite_url, now=NOW)


def test_a_seeded_member_reads_its_seed_named_by_the_exchanges_own_ids(
    exchanges, monkeypatch, sqlite_url, tmp_path
):
    from tests.markets.test_history_limits import seed_folder

    binance, kraken = exchanges
    btc = kraken.market("BTC/USDT")
    folder = seed_folder(tmp_path, btc, until=dt.date(2026, 5, 31), coin="btc-usdt")  # no prefix in the files
    _settings(monkeypatch, binance.api_url, kraken.api_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MARKET_KRAKEN",
        "crypto-ml-market://kraken?symbols=BTC/USDT&retries=0"
        f"&rate_limit_ms=0&seed={folder}&api_url={kraken.api_url}",
    )
    out = poll(D, url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and "kraken.btc-usdt" in out["coins"]
    assert _labels(sqlite_url)["kraken.btc-usdt"] == {"ccxt:kraken", f"csv-seed:{folder}"}
    dates = [d.date() for d in storage.load_prices("kraken.btc-usdt", url=sqlite_url)["Date"]]
    assert dates[0] == dt.date(2026, 2, 1) and dates[-1] == D and len(dates) == len(set(dates))
