"""Exchanges' limits are said: Kraken serves its 720 most recent daily candles whatever is asked;
a first poll, a ``start`` before what is served, a market listed after ``start`` and a backfill day
outside what the exchange serves each say so (days missing, what to do) in the coin's result and
the run's summary; the seeded setting (a CSV folder, then the exchange) builds the deep history."""

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
SERVED_FROM = TODAY - dt.timedelta(days=719)  # the 720 most recent, today's (forming) included


@pytest.fixture(autouse=True)
def exchange_in_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "crypto-ml-market://kraken?top=1000&quote=USD")


@pytest.fixture
def kraken():
    with FakeKraken(
        [
            FakeMarket("BTC", "USD", first=dt.date(2013, 10, 6), price=120),
            FakeMarket("ETH", "USD", first=dt.date(2026, 3, 1), price=3_000),
        ],
        today=TODAY,
    ) as ex:
        yield ex


def market(ex, symbols="BTC/USD,ETH/USD", **extra):
    query = "&".join(f"{k}={v}" for k, v in {"symbols": symbols, "rate_limit_ms": 0, **extra}.items())
    return MarketConfig.from_env_value(f"crypto-ml-market://kraken?{query}&api_url={ex.api_url}")


def stored(url, coin):
    return [d.date() for d in storage.load_prices(coin, url=url)["Date"]]


def history_limits(out):
    return [w for w in out["warnings"] if "[history_limit]" in w]


def test_a_first_poll_says_the_history_was_cut_by_the_depth_cap(kraken, sqlite_url):
    out = poll(D, market=market(kraken), url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and out["coins"] == ["btc-usd", "eth-usd"]
    assert stored(sqlite_url, "btc-usd")[0] == SERVED_FROM and len(stored(sqlite_url, "btc-usd")) == 719
    [limit] = history_limits(out)  # the market listed in March 2026 is whole: no word about it
    assert "btc-usd (BTC/USD) on kraken: history before 2024-12-11 is cut" in limit
    assert "its 720 most recent daily candles" in limit and "extra.seed=" in limit


def test_a_start_before_what_is_served_counts_the_days_missing(kraken, sqlite_url):
    m = market(kraken, start="2024-01-01")
    result = ingest(loader=_loader(m, sqlite_url), url=sqlite_url)
    missing = (SERVED_FROM - dt.date(2024, 1, 1)).days
    assert f"{missing} days missing (2024-01-01..2024-12-10)" in result.history_limits["btc-usd"]
    # a market listed after start: its first candle is later than asked, and said so
    eth = result.history_limits["eth-usd"]
    assert "its first candle on kraken is 2026-03-01" in eth
    assert f"{(dt.date(2026, 3, 1) - dt.date(2024, 1, 1)).days} days missing" in eth
    assert "LIMITED btc-usd" in str(result) and "LIMITED eth-usd" in str(result)


def _loader(m, url):
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.pipeline.steps import market_source

    storage.migrate(url)
    day = m.market_day(D, now=NOW)
    return CryptoLoader(market_source(m, day, stored=storage.price_range(url=url), now=NOW), as_of=day)


def test_a_backfill_day_outside_what_the_exchange_serves_fails_that_coin_saying_why(kraken, sqlite_url):
    m = market(kraken)
    poll(D, market=m, url=sqlite_url, now=NOW)
    out = poll(dt.date(2020, 1, 1), market=m, url=sqlite_url, now=NOW)  # before the 720 days
    reason = out["failed_coins"]["btc-usd"]
    assert "day 2020-01-01 is outside what kraken serves" in reason
    assert f"{(SERVED_FROM - dt.date(2020, 1, 1)).days} days missing" in reason and "extra.seed=" in reason
    assert out["coins"] == [] and "eth-usd" not in out["failed_coins"]  # not listed yet: no failure
    assert stored(sqlite_url, "btc-usd")[0] == SERVED_FROM  # nothing invented


def seed_folder(tmp_path, market: FakeMarket, until: dt.date, *, coin="btc-usd"):
    """A CSV folder holding ``market``'s history up to ``until`` (long form, the exchange's coin id)."""
    folder = tmp_path / "seed"
    folder.mkdir(exist_ok=True)
    lines = ["coin,name,date,open,high,low,close,volume"]
    for c in market.candles(TODAY):
        day = dt.datetime.fromtimestamp(c[0] / 1000, dt.UTC).date()
        if day <= until:
            lines.append(
                f"{coin},{market.symbol},{day},{c[1]:.5f},{c[2]:.5f},{c[3]:.5f},{c[4]:.5f},{c[5]:.8f}"
            )
    (folder / f"{coin}.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_the_seeded_setting_builds_the_deep_history_end_to_end(kraken, sqlite_url, tmp_path):
    btc = kraken.market("BTC/USD")
    folder = seed_folder(tmp_path, btc, until=dt.date(2025, 6, 30))  # overlaps what Kraken serves
    m = market(kraken, "BTC/USD", seed=folder)
    assert "seeded from the CSV files in" in m.describe()
    out = poll(D, market=m, url=sqlite_url, now=NOW)
    assert out["failed_coins"] == {} and history_limits(out) == [] and out["coins"] == ["btc-usd"]
    days = stored(sqlite_url, "btc-usd")
    assert days[0] == dt.date(2013, 10, 6) and days[-1] == D
    assert len(days) == len(set(days)) == (D - dt.date(2013, 10, 6)).days + 1  # every day, once
    closes = storage.load_prices("btc-usd", url=sqlite_url).set_index("Date")["Close"]
    want = btc.closes(TODAY)
    for day in ("2013-10-06", "2019-05-05", "2025-06-30", "2025-07-01", D.isoformat()):
        assert closes[day] == pytest.approx(want[day], rel=1e-5)
    from sqlalchemy import text

    with storage.get_engine(sqlite_url).connect() as conn:  # each row says where it came from
        sources = dict(conn.execute(text("SELECT source, COUNT(*) FROM prices GROUP BY source")).all())
    assert sources == {
        f"csv-seed:{folder}": (dt.date(2025, 6, 30) - dt.date(2013, 10, 6)).days + 1,
        "ccxt:kraken": (D - dt.date(2025, 6, 30)).days,
    }
    # the next day asks the exchange for the new candle only, and reads the seed's rows no more
    kraken.reset_counts()
    nxt = poll(TODAY, market=m, url=sqlite_url, now=NOW + dt.timedelta(days=1))
    assert nxt["inserted"] == 1 and dict(kraken.ohlc_calls) == {"XXBTZUSD": 1}
    # a backfilled day from the seed's years is held, and predicted from what is stored
    got = transform("btc-usd", dt.date(2016, 1, 1), url=sqlite_url, market=m)
    assert got["last_date"] == "2016-01-01"


def test_a_seed_that_stops_short_of_what_the_exchange_serves_says_the_gap(kraken, sqlite_url, tmp_path):
    folder = seed_folder(tmp_path, kraken.market("BTC/USD"), until=dt.date(2023, 12, 31))
    out = poll(D, market=market(kraken, "BTC/USD", seed=folder), url=sqlite_url, now=NOW)
    [limit] = history_limits(out)
    assert "asked from 2024-01-01, served from 2024-12-11" in limit
    assert f"{(SERVED_FROM - dt.date(2024, 1, 1)).days} days missing" in limit


def test_a_seed_coin_outside_the_universe_is_said_not_stored(kraken, sqlite_url, tmp_path):
    folder = seed_folder(tmp_path, kraken.market("BTC/USD"), until=dt.date(2020, 1, 1), coin="bitcoin")
    m = market(kraken, "BTC/USD", seed=folder)
    result = ingest(loader=_loader(m, sqlite_url), url=sqlite_url)
    assert "bitcoin: in the seed" in result.notes["bitcoin"] and "not stored" in result.notes["bitcoin"]
    assert "bitcoin" not in storage.price_range(url=sqlite_url)


def test_rows_fetched_for_a_2000_day_history_with_the_seeded_setting(tmp_path, sqlite_url, capsys):
    first = TODAY - dt.timedelta(days=2000)
    coin = FakeMarket("BTC", "USD", first=first, price=120)
    with FakeKraken([coin], today=TODAY) as ex:
        folder = seed_folder(tmp_path, coin, until=TODAY - dt.timedelta(days=700))
        m = market(ex, "BTC/USD", seed=folder)
        result = ingest(loader=_loader(m, sqlite_url), url=sqlite_url)
        calls = dict(ex.requests)
    days = stored(sqlite_url, "btc-usd")
    assert days[0] == first and days[-1] == D and len(days) == 2000
    seeded = result.seeded_by_coin["btc-usd"]
    assert seeded == 1301 and result.inserted == 2000 and result.history_limits == {}
    with capsys.disabled():
        print(
            f"\n[figure] 2,000-day history, seeded: {seeded} rows from the seed, "
            f"{result.inserted - seeded} from kraken, requests {calls}"
        )
