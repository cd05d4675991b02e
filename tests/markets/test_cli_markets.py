"""The data commands on the second exchange shape: each says what it reads (the market, from
which setting), names failed coins and what the exchange did not serve, and exits 1 when a coin
failed; the setting as the README writes it (an unencoded api_url) is read as such."""

from __future__ import annotations

import datetime as dt

from crypto_ml import storage
from crypto_ml.cli import main
from crypto_ml.testing.fake_kraken import FakeKraken, FakeMarket


def test_ingest_and_summary_on_kraken_say_the_source_the_limits_and_the_failures(
    tmp_path, capsys, monkeypatch
):
    today = dt.datetime.now(dt.UTC).date()
    with FakeKraken(
        [
            FakeMarket("BTC", "USD", first=dt.date(2015, 1, 1)),
            FakeMarket("ETH", "USD", first=today - dt.timedelta(days=30)),
        ]
    ) as ex:
        uri = f"crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&rate_limit_ms=0&api_url={ex.api_url}"
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        assert main(["ingest", "--market", uri, "--db", url, "--quiet"]) == 0
        out = capsys.readouterr().out
        assert (
            "[2/3] loading and validating prices from exchange kraken (BTC/USD, ETH/USD) via ccxt "
            "[ccxt:kraken; from --market]"
        ) in out
        assert "LIMITED btc-usd: btc-usd (BTC/USD) on kraken: history before" in out
        assert "bundled" not in out
        assert storage.count_rows("prices", url=url) == 719 + 30
        monkeypatch.setenv("AIRFLOW_CONN_CRYPTO_ML_MARKET", uri.replace("ETH/USD", "ETH/USD,NOPE/USD"))
        assert main(["summary", "--market", "env"]) == 1
        out = capsys.readouterr().out
        assert "from AIRFLOW_CONN_CRYPTO_ML_MARKET]" in out
        assert "FAILED nope-usd: nope-usd (NOPE/USD) on kraken: unknown symbol" in out
        assert "1 coins failed: nope-usd" in out
        storage.dispose_engine(url)


def test_a_setting_that_cannot_be_read_fails_the_command_naming_the_field(capsys):
    assert main(["summary", "--market", "crypto-ml-market://kraken?symbols=BTC/USD&tpo=1"]) != 0
    assert "unknown extra field(s) ['tpo']" in capsys.readouterr().err


def test_ingest_of_several_markets_names_each_and_stores_each_exchanges_coins(tmp_path, capsys, monkeypatch):
    from crypto_ml.testing import fake_exchange

    today = dt.datetime.now(dt.UTC).date()
    with (
        FakeKraken([FakeMarket("BTC", "USDT", first=today - dt.timedelta(days=40))]) as kraken,
        fake_exchange.FakeExchange(
            [fake_exchange.FakeMarket("BTC", first=today - dt.timedelta(days=20))]
        ) as binance,
    ):
        monkeypatch.setenv(
            "AIRFLOW_CONN_MK",
            f"crypto-ml-market://kraken?symbols=BTC/USDT&rate_limit_ms=0&api_url={kraken.api_url}",
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_MB",
            f"crypto-ml-market://binance?symbols=BTC/USDT,NOPE/USDT&api_url={binance.api_url}",
        )
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        assert (
            main(["ingest", "--market", "crypto-ml-market://multi?markets=mb,mk", "--db", url, "--quiet"])
            == 1
        )
        out = capsys.readouterr().out
        assert (
            "from 2 markets: exchange binance (BTC/USDT, NOPE/USDT) via ccxt; exchange kraken (BTC/USDT) "
            "via ccxt [multi:binance+kraken; from --market]"
        ) in out
        assert "FAILED binance.nope-usdt: binance.nope-usdt (NOPE/USDT) on binance: unknown symbol" in out
        assert storage.count_rows("prices", url=url) == 20 + 40
        assert len(storage.load_prices("binance.btc-usdt", url=url)) == 20
        assert len(storage.load_prices("kraken.btc-usdt", url=url)) == 40
        storage.dispose_engine(url)
