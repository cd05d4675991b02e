"""API calls and seconds per daily poll on the Kraken-shaped exchange (not a test: a figure).

    python tests/markets/bench_kraken_poll.py 10 100

For N symbols listed 400 days ago: the first poll stores their history (rate limit off, to get
there fast), then the next day's poll (:func:`crypto_ml.pipeline.steps.poll`, the master's first task)
is timed twice: with ccxt's own rate limiter at Kraken's published pace (ccxt's ``rateLimit``
for kraken, 1,000 ms between public calls) and with it off (``rate_limit_ms=0``: the client's and
the project's own cost)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time

from crypto_ml.markets import Market
from crypto_ml.pipeline.steps import poll
from crypto_ml.testing.fake_kraken import FakeKraken, FakeMarket


def names(n):
    out, k = [], 0
    while len(out) < n:
        out.append("C" + "".join(chr(65 + (k // 26**i) % 26) for i in range(3)))
        k += 1
    return out


def run(n: int) -> list[dict]:
    today = dt.date(2026, 11, 30)
    now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    markets = [
        FakeMarket(b, "USD", first=today - dt.timedelta(days=400), seed=i) for i, b in enumerate(names(n))
    ]
    symbols = ",".join(m.symbol for m in markets)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeKraken(markets, today=today) as ex:
        url = f"sqlite:///{tmp}/db.sqlite"
        os.environ["AIRFLOW_CONN_CRYPTO_ML_MARKET"] = "crypto-ml-market://kraken?top=1000&quote=USD"

        def setting(extra=""):
            return Market.from_env_value(
                f"crypto-ml-market://kraken?symbols={symbols}{extra}&api_url={ex.api_url}"
            )

        started = time.perf_counter()
        first = poll(today - dt.timedelta(days=1), market=setting("&rate_limit_ms=0"), url=url, now=now)
        rows.append(
            {
                "n": n,
                "poll": "first (400 days each), limiter off",
                "requests": sum(ex.requests.values()),
                "seconds": time.perf_counter() - started,
                "inserted": first["inserted"],
            }
        )
        for label, extra in (
            ("daily, ccxt limiter (1,000 ms)", ""),
            ("daily, limiter off", "&rate_limit_ms=0"),
        ):
            ex.today = ex.today + dt.timedelta(days=1)
            now += dt.timedelta(days=1)
            ex.reset_counts()
            started = time.perf_counter()
            out = poll(ex.today - dt.timedelta(days=1), market=setting(extra), url=url, now=now)
            rows.append(
                {
                    "n": n,
                    "poll": label,
                    "requests": sum(ex.requests.values()),
                    "by_path": dict(ex.requests),
                    "seconds": time.perf_counter() - started,
                    "inserted": out["inserted"],
                    "failed": len(out["failed_coins"]),
                }
            )
    return rows


if __name__ == "__main__":
    import logging

    logging.disable(logging.WARNING)
    print("| symbols | poll | HTTP requests | seconds | rows inserted |")
    print("|---|---|---|---|---|")
    for n in map(int, sys.argv[1:] or ["10", "100"]):
        for r in run(n):
            print(
                f"| {r['n']} | {r['poll']} | {r['requests']} {r.get('by_path', '')} "
                f"| {r['seconds']:.2f} | {r['inserted']} |",
                flush=True,
            )
