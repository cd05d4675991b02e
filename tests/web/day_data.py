"""A day as the pipeline leaves it, for the view's summary (filled through the storage layer and
the real trading service on the paper broker): five coins with 30 closes each; on the day before,
drift-like forecasts that buy ``up1`` and ``up2`` on paper; on the day itself, a naive forecast of
every coin (0 % moves, intervals widest for ``wide``), decided and stored."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from crypto_ml import storage
from crypto_ml.trading.brokers import PaperBroker
from crypto_ml.trading.service import handle_prediction

DAY = dt.date(2017, 7, 3)
COINS = ("bitcoin", "up1", "up2", "down", "wide")
#: Close on the day before and on the day: the bought coins moved, so the paper book has a P&L.
CLOSES = {
    "bitcoin": (2500.0, 2550.0),
    "up1": (10.0, 11.0),
    "up2": (4.0, 3.0),
    "down": (1.0, 1.0),
    "wide": (0.5, 0.5),
}


def _prediction(coin: str, day: dt.date, model: str, move: float, spread: float) -> dict:
    last = CLOSES[coin][day == DAY]
    values = list(np.linspace(last, last * (1 + move), 11)[1:])
    bands = {
        level: {
            "lower": [v * (1 - spread * k) for v in values],
            "upper": [v * (1 + spread * k) for v in values],
        }
        for level, k in (("80", 1), ("95", 2))
    }
    return {
        "coin": coin,
        "as_of": day.isoformat(),
        "model": model,
        "version": 1,
        "horizon": 10,
        "values": values,
        "last_close": last,
        "intervals": bands,
        "interval_method": "conformal",
    }


def fill_day(url: str) -> None:
    storage.migrate(url)
    dates = pd.date_range(DAY - dt.timedelta(days=29), DAY, freq="D")
    for coin, (before, last) in CLOSES.items():
        closes = np.r_[np.linspace(before * 0.8, before, 29), last]
        storage.store_prices(
            pd.DataFrame(
                {
                    "coin": coin,
                    "date": dates,
                    "open": closes,
                    "high": closes,
                    "low": closes,
                    "close": closes,
                    "volume": 1.0,
                    "market_cap": 1.0,
                }
            ),
            source="test",
            url=url,
        )
    broker = PaperBroker(url)
    before = DAY - dt.timedelta(days=1)
    for coin, move in (("bitcoin", 0.01), ("up1", 0.05), ("up2", 0.06), ("down", -0.08), ("wide", 0.0)):
        handle_prediction(
            _prediction(coin, before, "drift", move, 0.05), kill_switch=False, broker=broker, url=url
        )
    for coin in COINS:
        spread = 0.5 if coin == "wide" else 0.05
        handle_prediction(
            _prediction(coin, DAY, "naive", 0.0, spread), kill_switch=False, broker=broker, url=url
        )
