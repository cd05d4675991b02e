"""The steps of the daily pipeline as plain functions; the DAGs' operators are thin wrappers.

- :func:`poll` (master DAG): store the new day of prices and list the coins that have it.
- :func:`transform` (per-coin pipeline): the coin's validated history up to ``as_of`` from the
  project database, its latest features, and the closes the engine will predict from.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from crypto_ml.sources.base import as_date

log = logging.getLogger(__name__)


class PipelineInputError(ValueError):
    """Bad input for a pipeline step: names the coin and what is wrong; never worth a retry."""


class NotEnoughHistory(PipelineInputError):
    """The coin is fine but too young to predict on that day: the run is skipped, not failed."""


def poll(logical_date: Any, *, url: str | None = None) -> dict[str, Any]:
    """Reveal the replayed history up to the run's day, store what the DB lacks, and list the coins
    whose data includes that day (the ones to predict).

    Idempotent: a re-run stores nothing new and returns the same coins.
    """
    from crypto_ml import storage
    from crypto_ml.data_loader import CryptoLoader
    from crypto_ml.catalog import replay_day
    from crypto_ml.ingest import ingest
    from crypto_ml.sources.replay import ReplaySource

    day = replay_day(logical_date)
    url = storage.database_url(url)
    storage.migrate(url)
    stored = storage.price_range(url=url)
    loader = CryptoLoader(ReplaySource(today=day), as_of=day)
    # Only what the DB lacks: per coin, the rows after its last stored day.
    result = ingest(loader=loader, since={c: last for c, (_, last) in stored.items()}, url=url)
    coins = sorted(
        coin for coin in loader.get_crypto_names()
        if loader.get_df(coin)["Date"].iat[-1].date() == day
    )
    log.info("history day %s: %s; %d coins have data for it", day, result, len(coins))
    return {
        "history_day": day.isoformat(),
        "inserted": result.inserted,
        "quarantined_new": result.quarantined_new,
        "failed_coins": result.failed_coins,
        "coins": coins,
    }


def transform(coin: str, as_of: Any, *, min_rows: int = 2, url: str | None = None) -> dict[str, Any]:
    """Validate one coin's stored history up to ``as_of`` and compute its features.

    Reads the project database (what the master DAG stored). If the coin's history up to
    ``as_of`` is not there yet (a single-coin run triggered by hand), it is ingested first from
    the replay of the bundled data, which is idempotent.

    Returns a JSON-able dict: coin, as_of, rows, first/last date, last close, latest features,
    warnings, and ``closes`` (the series the engine predicts from).
    """
    from crypto_ml import storage

    day = as_date(as_of)
    if day is None:
        raise PipelineInputError(f"{coin}: as_of is required (YYYY-MM-DD)")
    url = storage.database_url(url)
    storage.migrate(url)
    df = storage.load_prices(coin, as_of=day, url=url)
    if df.empty or df["Date"].iat[-1].date() < day:
        _ingest_coin_history(coin, day, url)
        df = storage.load_prices(coin, as_of=day, url=url)
    if df.empty:
        raise NotEnoughHistory(f"{coin}: no prices on or before {day} in the project database")
    closes = df["Close"].to_numpy()
    bad = [i for i, v in enumerate(closes) if not (math.isfinite(v) and v > 0)]
    if bad:
        i = bad[0]
        raise PipelineInputError(
            f"{coin}: row {i} ({df['Date'].iat[i]:%Y-%m-%d}) has close {float(closes[i])!r}; "
            "prices must be positive numbers"
        )
    if len(df) < min_rows:
        raise NotEnoughHistory(
            f"{coin}: {len(df)} rows up to {day}, at least {min_rows} needed to predict"
        )
    warnings = []
    last = df["Date"].iat[-1].date()
    if last < day:
        warnings.append(f"stale: last price is {last}, {(day - last).days} day(s) before {day}")
    gaps = int((df["Date"].diff().dt.days > 1).sum())
    if gaps:
        warnings.append(f"{gaps} gap(s) of missing days in the history")
    return {
        "coin": coin,
        "as_of": day.isoformat(),
        "rows": len(df),
        "first_date": df["Date"].iat[0].date().isoformat(),
        "last_date": last.isoformat(),
        "last_close": float(closes[-1]),
        "features": _features(df),
        "warnings": warnings,
        "closes": [float(v) for v in closes],
    }


def _features(df):
    from crypto_ml.features import latest_features

    return latest_features(df)


def _ingest_coin_history(coin: str, day: dt.date, url: str) -> None:
    from crypto_ml import storage
    from crypto_ml.data_loader import CryptoLoader, UnknownCoinError
    from crypto_ml.sources.replay import ReplaySource

    loader = CryptoLoader(ReplaySource(today=day), as_of=day)
    try:
        coin_id = loader.resolve(coin)
    except UnknownCoinError as exc:
        from crypto_ml.catalog import coin_ids

        if coin in coin_ids():
            return  # a known coin with no history yet on that day: transform says so
        raise PipelineInputError(str(exc)) from None
    frame = loader.frame()
    part = frame[frame["coin"] == coin_id]
    storage.store_prices(part, source=loader.source.name, url=url)
    log.info("%s: stored %d rows of history up to %s before transforming", coin_id, len(part), day)
