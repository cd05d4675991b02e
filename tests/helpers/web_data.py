"""The web view's test data: two coins filled through the storage layer (HTML in every field)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from crypto_ml import storage

EVIL = "<script>alert('x')</script>"
START = dt.date(2024, 1, 1)


def fill(url: str) -> None:
    """Bitcoin: 120 days of prices, 3 predictions (one traded); ethereum: a prediction and a
    rejected trade but no prices; a coin whose name is an HTML payload."""
    storage.migrate(url)
    dates = pd.date_range(START, periods=120, freq="D")
    closes = 40_000 + np.cumsum(np.random.default_rng(7).normal(0, 400, len(dates)))
    frame = pd.DataFrame(
        {
            "coin": "bitcoin",
            "date": dates,
            "open": closes,
            "high": closes * 1.01,
            "low": closes * 0.99,
            "close": closes,
            "volume": 1e9,
            "market_cap": 8e11,
        }
    )
    storage.store_prices(frame, source="test", url=url)

    def day(i: int) -> dt.date:
        return START + dt.timedelta(days=i)

    for i, model in ((80, "arima"), (100, "arima"), (110, "lstm")):
        path = list(np.linspace(closes[i], closes[i] * 1.02, 8)[1:])  # ends 2 % up
        storage.store_prediction(
            coin="bitcoin",
            as_of=day(i),
            model=model,
            version=2,
            horizon=7,
            values=path,
            last_close=float(closes[i]),
            run_id=f"run-{i}",
            url=url,
        )
    storage.store_trade_request(
        coin="bitcoin",
        as_of=day(100),
        model="arima",
        version=2,
        horizon=7,
        side="buy",
        quantity=0.25,
        price=float(closes[100]),
        expected_return=0.02,
        broker="paper",
        status="filled",
        idempotency_key="btc-100",
        response={"order_id": "o-1", "api_secret": "hunter2"},
        url=url,
    )
    storage.store_prediction(
        coin="ethereum",
        as_of=day(90),
        model="arima",
        version=1,
        horizon=3,
        values=[2000.0, 1990.0, 1900.0],
        last_close=2000.0,
        url=url,
    )
    storage.store_trade_request(
        coin="ethereum",
        as_of=day(90),
        model="arima",
        version=1,
        horizon=3,
        side="sell",
        quantity=1.5,
        price=2000.0,
        expected_return=-0.05,
        broker="paper",
        status="rejected",
        idempotency_key="eth-90",
        url=url,
    )
    storage.store_prediction(
        coin=EVIL,
        as_of=day(50),
        model="<b>naive</b>",
        version=1,
        horizon=1,
        values=[1.5],
        last_close=1.0,
        url=url,
    )
    storage.store_trade_request(
        coin=EVIL,
        as_of=day(50),
        model="<b>naive</b>",
        version=1,
        horizon=1,
        side="buy",
        quantity=1,
        price=1.0,
        expected_return=0.5,
        broker="<i>b</i>",
        status="<img src=x onerror=alert(1)>",
        idempotency_key="<k>",
        url=url,
    )
