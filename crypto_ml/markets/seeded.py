"""An exchange seeded from a CSV folder (``extra.seed``): the deep history of the exchange's coins
from the user's files, then the exchange's candles after them, in one setting::

    crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&seed=/data/history

The seed's files name coins by the exchange's ids (``btc-usd.csv`` per coin, or the long form
with ``coin=btc-usd``). A coin's days the project DB lacks are read from the seed first; the
exchange is asked only for the days after them, and the days neither serves are said (a gap
between the seed's end and the exchange's first candle, with the count of days)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crypto_ml.markets.base import conn_field
from crypto_ml.markets.exchange import ExchangeMarket


@dataclass(frozen=True)
class SeededMarket(ExchangeMarket):
    """An :class:`ExchangeMarket` (its ``kind`` is ``exchange``) whose history starts from a seed."""

    name = "seeded"
    keys = ExchangeMarket.keys | {"seed"}
    conn_fields = {
        "seed": conn_field(
            "Seed CSV folder",
            "string",
            "Exchange: a CSV folder with the older history of its coins "
            "(files named by coin id, e.g. btc-usd.csv), read before the exchange; for an exchange "
            "that serves little history (Kraken: its 720 most recent daily candles).",
        )
    }

    @classmethod
    def matches(cls, host: str, extra: dict) -> bool:
        return bool(extra.get("seed")) and host not in ("replay", "csv")

    @classmethod
    def from_extra(cls, host: str, extra: dict, *, origin: str) -> dict[str, Any]:
        return {**super().from_extra(host, extra, origin=origin), "seed": str(extra["seed"])}

    def describe(self) -> str:
        return super().describe() + f", seeded from the CSV files in {self.seed}"
