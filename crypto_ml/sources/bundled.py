"""The real dataset shipped inside the package."""

from __future__ import annotations

import datetime as dt
from importlib import resources

import pandas as pd

from crypto_ml.sources.base import Source
from crypto_ml.sources.csv import read_long_csv

DATA_FILE = "crypto_daily.csv.gz"
COINS_FILE = "coins.csv"

PROVENANCE = (
    "CoinMarketCap daily history of the top-100 cryptocurrencies ranked on 2017-10-09 "
    "(97 coins, 77,110 rows, 2013-04-28 to 2017-09-23), from the Kaggle 'Top 100 "
    "Cryptocurrencies Historical Dataset' as bundled in axsaucedo/crypto-ml (MIT)."
)


def _data_path(name: str):
    return resources.files("crypto_ml").joinpath("data", name)


class BundledSource(Source):
    """The talk's top-100 dataset, bundled in the package as one gzip long CSV (1.5 MB)."""

    name = "bundled"

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        with resources.as_file(_data_path(DATA_FILE)) as path:
            return read_long_csv(path, DATA_FILE)

    def coin_metadata(self) -> pd.DataFrame:
        with resources.as_file(_data_path(COINS_FILE)) as path:
            return pd.read_csv(path, dtype={"coin": str, "name": str, "symbol": str, "rank": int})
