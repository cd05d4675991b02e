"""CryptoLoader over the bundled real dataset and the talk's original per-coin files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_ml.data.loader import DF_COLUMNS, CryptoLoader, UnknownCoinError
from crypto_ml.data.validation import DataValidationError
from crypto_ml.sources import CSVSource, SourceError

SHARED_RAW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "top100_raw.zip"


@pytest.fixture(scope="module")
def loader():
    return CryptoLoader()


def test_bundled_dataset_is_the_talks_top100(loader):
    assert len(loader) == 97
    assert len(loader.frame()) == 77_110
    assert loader.report.errors == []
    names = loader.get_crypto_names()
    assert names == sorted(names) and "bitcoin" in names and "bitcoin-cash" in names


def test_get_df_bitcoin_is_the_series_in_the_talk(loader):
    df = loader.get_df("bitcoin")
    assert list(df.columns) == DF_COLUMNS
    assert len(df) == 1609
    assert df["Date"].is_monotonic_increasing
    assert df["Date"].iat[0] == pd.Timestamp("2013-04-28") and df["Close"].iat[0] == 134.21
    assert list(df["Close"].iloc[-3:]) == [3905.95, 3631.04, 3630.70]


def test_get_prices_returns_closes_and_times(loader):
    prices, times = loader.get_prices("bitcoin")
    assert prices.dtype == np.float64 and prices.shape == (1609,)
    assert np.issubdtype(times.dtype, np.datetime64)
    assert prices[-1] == 3630.70 and times[-1] == np.datetime64("2017-09-22")


@pytest.mark.parametrize("name", ["bitcoin", "Bitcoin", "BTC", "btc", " BITCOIN "])
def test_names_and_symbols_any_case(loader, name):
    assert loader.resolve(name) == "bitcoin"


def test_display_names_with_spaces(loader):
    assert loader.resolve("Bitcoin Cash") == "bitcoin-cash"
    assert loader.resolve("stellar lumens") == "stellar-lumens"


def test_unknown_coin_lists_close_matches(loader):
    with pytest.raises(UnknownCoinError) as err:
        loader.get_df("bitcon")
    message = str(err.value)
    assert "unknown coin 'bitcon'" in message and "'bitcoin'" in message
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownCoinError, match="non-empty string"):
        loader.get_df("")


def test_returned_frames_are_copies(loader):
    df = loader.get_df("ethereum")
    df.loc[:, "Close"] = -1.0
    prices, _ = loader.get_prices("ethereum")
    prices[:] = 0
    assert (loader.get_df("ethereum")["Close"] > 0).all()


def test_as_of_is_a_point_in_time_view():
    day = dt.date(2017, 1, 1)
    loader = CryptoLoader(as_of=day)
    assert loader.frame()["date"].max() == pd.Timestamp(day)
    assert loader.get_df("bitcoin")["Date"].max() == pd.Timestamp(day)
    # coins that did not exist yet are not there at all
    assert "bitcoin-cash" not in loader
    # per-call as_of narrows further, never widens
    assert loader.get_df("bitcoin", as_of="2016-12-30")["Date"].max() == pd.Timestamp("2016-12-30")
    with pytest.raises(ValueError, match="cannot see later data"):
        loader.get_df("bitcoin", as_of="2017-01-02")


def test_per_call_as_of_on_a_full_loader(loader):
    prices, times = loader.get_prices("bitcoin", as_of="2017-09-20")
    assert times[-1] == np.datetime64("2017-09-20") and prices[-1] == 3905.95
    assert len(loader.get_df("bitcoin", as_of="2000-01-01")) == 0


def test_coins_table(loader):
    table = loader.coins()
    assert table.loc["bitcoin", "symbol"] == "BTC"
    assert table.loc["neblio", "rows"] == 11
    assert not table["synthetic"].any()
    assert table.loc["mooncoin", "warnings"] >= 1  # the real open-outside-range row


def write_talk_file(path: Path, lines: list[str]) -> None:
    path.write_text("Date,Open,High,Low,Close,Volume,Market Cap\n" + "\n".join(lines) + "\n")


def test_talks_per_coin_files_with_every_quirk(tmp_path):
    write_talk_file(
        tmp_path / "Bitcoin.csv",
        [
            '"Sep 22, 2017",3628.02,3758.27,3553.53,3630.7,"1,194,830,000","60,152,300,000"',
            '"Sep 21, 2017",3901.47,3916.42,3613.63,3631.04,"1,411,480,000","64,677,600,000"',
            '"Sep 9, 2017",4605.16,4662.05,4355.05,4635.0,"1,453,030,000",-',
            '"Sep 8, 2017",4605.16,4662.05,4355.05,oops,"1,453,030,000",-',
        ],
    )
    write_talk_file(
        tmp_path / "Bitcoin Cash.csv",
        ['"Sep 22, 2017",410.0,420.0,400.0,410.47,"260,857,000",-'],
    )
    (tmp_path / "100 List.csv").write_text("#,Name,Market Cap\n1,Bitcoin,1\n")  # not a price file
    loader = CryptoLoader(tmp_path)
    assert loader.get_crypto_names() == ["bitcoin", "bitcoin-cash"]
    df = loader.get_df("BTC")  # symbols come from the bundled coin list
    assert list(df["Date"].dt.day) == [9, 21, 22]  # newest-first files come out oldest-first
    assert df["Volume"].iat[-1] == 1_194_830_000 and pd.isna(df["Market Cap"].iat[0])
    [bad] = loader.report.errors
    assert (bad.coin, bad.origin, bad.line, bad.rule) == ("bitcoin", "Bitcoin.csv", 5, "number_invalid")
    assert "close 'oops' is not a number" in str(bad)
    with pytest.raises(DataValidationError, match="Bitcoin.csv line 5"):
        CryptoLoader(tmp_path, strict=True)


def test_long_csv_file_and_missing_path(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text(
        "coin,name,date,open,high,low,close,volume,market_cap\nfoo,Foo,2017-01-01,1,2,0.5,1.5,,\n"
    )
    assert CryptoLoader(path).get_df("foo")["Close"].tolist() == [1.5]
    with pytest.raises(SourceError, match="not found"):
        CSVSource(tmp_path / "nope").read()
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="not a price CSV"):
        CSVSource(tmp_path / "junk.csv").read()


@pytest.mark.skipif(
    not SHARED_RAW.exists() and os.environ.get("CI") != "true",
    reason=f"the original per-coin files are not at {SHARED_RAW}",
)
def test_original_zip_loads_identical_to_the_bundled_data(loader):
    raw = CryptoLoader(SHARED_RAW)
    assert raw.get_crypto_names() == loader.get_crypto_names()
    assert raw.report.errors == []
    a = raw.frame().drop(columns=["name"])
    b = loader.frame().drop(columns=["name"])
    pd.testing.assert_frame_equal(a, b)
