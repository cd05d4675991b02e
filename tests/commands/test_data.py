"""The ``crypto-ml`` data commands, end to end through the installed console script's code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crypto_ml import storage
from crypto_ml.cli import main


def test_summary_prints_one_line_per_coin(capsys):
    assert main(["summary", "--coins", "bitcoin,ETH,neblio"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.split(" ")[0] in {"bitcoin", "ethereum", "neblio"}]
    assert len(lines) == 3
    assert "1609" in lines[0] and "3630.7" in lines[0]
    assert "97 coins (0 synthetic) from bundled" in out


def test_summary_flags_synthetic_coins(capsys):
    assert main(["summary", "--synthetic", "3", "--coins", "synthetic-00001,bitcoin"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "reading bundled (--source) + 3 synthetic coins ..."
    assert "SYNTHETIC" in out.splitlines()[3] and "100 coins (1 synthetic)" in out


def test_validate_exits_1_on_errors_and_names_the_row(tmp_path, capsys):
    (tmp_path / "Foo.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Market Cap\n"
        '"Sep 2, 2017",1,2,0.5,3,1,1\n"Sep 1, 2017",1,2,0.5,1.5,1,1\n'
    )
    assert main(["validate", "--source", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "foo 2017-09-02 (Foo.csv line 2) [close_outside_range]" in out
    assert main(["validate"]) == 0  # the bundled data has warnings, no errors


def test_ingest_twice_stores_each_row_once(db_url, tmp_path, capsys):
    (tmp_path / "Foo.csv").write_text(
        "Date,Open,High,Low,Close,Volume,Market Cap\n"
        '"Sep 3, 2017",1,2,0.5,1.5,"1,000",-\n"Sep 2, 2017",1,2,0.5,3,1,1\n"Sep 1, 2017",1,2,0.5,1.5,1,1\n'
    )
    args = ["ingest", "--source", str(tmp_path), "--db", db_url, "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "stored 2 rows of 1 coins: 2 new, 0 already present" in first
    assert "1 new quarantined rows" in first
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "0 new, 2 already present" in second and "0 new quarantined rows" in second
    assert storage.count_rows("prices", url=db_url) == 2
    assert storage.count_rows("quarantined_rows", url=db_url) == 1


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "crypto-ml"
    if not exe.exists():
        pytest.fail(f"the crypto-ml console script is not installed at {exe}: run bash scripts/install.sh")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("crypto-ml ")


def test_summary_and_ingest_read_a_market_like_the_pipeline(tmp_path, capsys):
    """`crypto-ml summary --market URI`: try a market setting before giving it to Airflow."""
    import datetime as dt

    from crypto_ml.testing.fake_exchange import FakeExchange, FakeMarket

    today = dt.datetime.now(dt.UTC).date()
    with FakeExchange([FakeMarket("BTC", first=today - dt.timedelta(days=30))]) as ex:
        uri = f"crypto-ml-market://binance?symbols=BTC/USDT,NOPE/USDT&api_url={ex.api_url}"
        assert main(["summary", "--market", uri]) == 1  # a coin failed: named, and the exit says so
        out = capsys.readouterr().out
        assert out.startswith(
            "reading exchange binance (BTC/USDT, NOPE/USDT) via ccxt [ccxt:binance; from --market]"
        )
        assert "FAILED nope-usdt: nope-usdt (NOPE/USDT) on binance: unknown symbol" in out
        assert "1 coins failed: nope-usdt" in out
        btc = next(ln for ln in out.splitlines() if ln.startswith("btc-usdt"))
        assert "BTC/USDT" in btc and " 30 " in f" {btc} "  # 30 closed daily candles, today's left out
        assert "1 coins (0 synthetic) from ccxt:binance" in out
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        assert main(["validate", "--market", uri]) == 1  # NOPE/USDT is not a market there
        assert "FAILED nope-usdt: nope-usdt (NOPE/USDT) on binance: unknown symbol" in capsys.readouterr().out
        assert main(["ingest", "--market", uri, "--db", url, "--quiet"]) == 1
        out = capsys.readouterr().out
        assert "[2/3] loading and validating prices from exchange binance (BTC/USDT, NOPE/USDT)" in out
        assert "FAILED nope-usdt" in out and "from ccxt:binance: stored 30 rows" in out
        assert storage.count_rows("prices", url=url) == 30
        clean = f"crypto-ml-market://binance?symbols=BTC/USDT&api_url={ex.api_url}"
        assert main(["summary", "--market", clean]) == 0
        assert main(["ingest", "--market", clean, "--db", url, "--quiet"]) == 0
        storage.dispose_engine(url)
