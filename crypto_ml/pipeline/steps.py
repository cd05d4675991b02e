"""The steps of the daily pipeline as plain functions; the DAGs' operators are thin wrappers.

- :func:`poll` (master DAG): store the new day of prices and list the coins that have it.
- :func:`transform` (per-coin pipeline): the coin's validated history up to ``as_of`` from the
  project database, its latest features, and the closes the engine will predict from.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from typing import Any

from crypto_ml.markets import EXCHANGE, REPLAY, MarketConfig, env_market
from crypto_ml.sources.base import as_date

log = logging.getLogger(__name__)


class PipelineInputError(ValueError):
    """Bad input for a pipeline step: names the coin and what is wrong; never worth a retry."""


class NotEnoughHistory(PipelineInputError):
    """The coin is fine but too young to predict on that day: the run is skipped, not failed."""


class ReplayExhausted(PipelineInputError):
    """A replayed run's day lies past the end of the bundled history."""


class AsOfAfterMarket(PipelineInputError):
    """A run's ``as_of`` lies after the market's last closed day: there is nothing to predict from
    (the replay's or a CSV folder's last day, an exchange's last closed candle at the run's clock)."""


class ModelNotTrained(PipelineInputError):
    """The run asks for a model served only from a trained version, and none is trained up to its day."""


def check_model_trained(coins: list[str], model: str, as_of: Any, *, url: str | None = None) -> None:
    """Refuse a model of :data:`crypto_ml.pipeline.params.TRAINED_ONLY` for coins without a version trained
    on data up to ``as_of`` in the model store, naming them and the command that trains them."""
    from crypto_ml.pipeline.params import TRAINED_ONLY, train_command

    if model not in TRAINED_ONLY or not coins:
        return
    from crypto_ml import storage

    day = as_date(as_of)
    url = storage.database_url(url)
    storage.migrate(url)
    missing = [c for c in coins if storage.latest_model_version(c, model, as_of=day, url=url) is None]
    if missing:
        shown = ", ".join(missing[:10]) + (f", ... ({len(missing)} coins)" if len(missing) > 10 else "")
        raise ModelNotTrained(
            f"model {model!r} is not trained for {shown} on data up to {day}, and a pipeline run does "
            f"not fit it on the fly; train it first: {train_command(model, missing)} (a training run "
            f"serves its market day and the days after)"
        )


def as_utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _refuse_after(coin: str, day: dt.date, last: dt.date, market: MarketConfig, *, clock: str = "") -> None:
    if day > last:
        raise AsOfAfterMarket(
            f"{coin}: as_of {day} is after the last closed day of the market ({market.describe()}"
            f"{clock}): {last}; give an as_of on or before {last}, or none (the run's market day)"
        )


def poll(
    logical_date: Any,
    *,
    market: MarketConfig | None = None,
    url: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Store the market's new daily prices up to the run's day and list the coins to predict.

    :param logical_date: the run's logical date; its day ``D`` is mapped onto the market
        (:meth:`~crypto_ml.markets.MarketConfig.market_day`): the replayed history day for the
        replay; for an exchange ``D`` itself, or the last day whose candle has closed.
    :param market: the market (default: the environment's ``crypto_ml_market``, else the replay).
    :param now: the clock deciding which exchange candles have closed (default: the wall clock).

    Only what the project DB lacks is read (per coin, after its last stored day; before its first
    one for a backfill earlier than anything stored); a re-run stores nothing twice. The coins to
    predict are the day's universe that has a price dated ``D``. A coin that fails to load is
    reported in ``failed_coins`` (coin and reason) and the others go on.
    """
    from crypto_ml import storage
    from crypto_ml.data.ingest import ingest
    from crypto_ml.data.loader import CryptoLoader

    market = market or env_market()
    day = market.market_day(logical_date, now=now)
    url = storage.database_url(url)
    storage.migrate(url)
    stored = storage.price_range(url=url)
    source = market_source(market, day, stored=stored, now=now)
    loader = CryptoLoader(source, as_of=day)
    if market.kind == REPLAY:
        _check_replay_covers(loader, day, logical_date)
    if market.kind == EXCHANGE:
        _report_gaps_after_stored(loader, stored)
        result = ingest(loader=loader, url=url)  # the source read only the missing days
        universe = set(source.universe_ids)
    else:
        result = ingest(loader=loader, since={c: last for c, (_, last) in stored.items()}, url=url)
        universe = set(loader.get_crypto_names())
    coins = [c for c in storage.coins_on(day, url=url) if c in universe]
    _check_parser_knows(market, coins)
    for finding in loader.report.warnings:
        log.warning("%s", finding)
    for coin, reason in result.failed_coins.items():
        log.error("%s failed to load: %s", coin, reason)
    log.info("%s, day %s: %s; %d coins have data for it", market.describe(), day, result, len(coins))
    out = {
        "history_day": day.isoformat(),
        "market": market.describe(),
        "inserted": result.inserted,
        "quarantined_new": result.quarantined_new,
        "failed_coins": result.failed_coins,
        # an exchange served less history than asked (days missing, what to do); facts that are
        # no failure (delisted since, not listed yet on the day)
        "history_limits": result.history_limits,
        "notes": result.notes,
        "warnings": _first_warnings(loader.report.warnings),
        "coins": coins,
    }
    if market.kind == EXCHANGE:
        out["api_calls"] = source.calls
    return out


def failed_upstream(ti) -> list[str]:
    """The task ids upstream of the running task ``ti`` (Airflow's task instance) that did not
    succeed: failed or upstream-failed (a skipped task is no failure), in task-id order."""
    upstream = sorted(ti.task.upstream_task_ids)
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=upstream, run_ids=[ti.run_id]).get(ti.run_id, {})
    return sorted(t for t, s in states.items() if s in ("failed", "upstream_failed"))


#: Warnings kept in the poll's XCom (every one is in the task log).
MAX_XCOM_WARNINGS = 100


def _first_warnings(findings) -> list[str]:
    """The first :data:`MAX_XCOM_WARNINGS` warnings, and a last line saying how many more the
    task log holds, never a silent cut."""
    lines = [str(f) for f in findings]
    if len(lines) <= MAX_XCOM_WARNINGS:
        return lines
    more = len(lines) - MAX_XCOM_WARNINGS
    return lines[:MAX_XCOM_WARNINGS] + [f"... and {more} more warnings: see this task's log"]


def training_coins(
    polled: dict[str, Any], *, coins: list[str] | None = None, min_rows: int, url: str | None = None
) -> list[dict[str, str]]:
    """The coins ``crypto_ml_train`` trains on the polled day: ``coins`` (all of them, or the run
    fails naming those without data that day or with fewer than ``min_rows`` days up to it), else
    every coin with data that day and at least ``min_rows`` days (the others named in the log).
    One ``{"coin", "as_of"}`` per coin."""
    from crypto_ml import storage

    day, have = polled["history_day"], polled["coins"]
    if coins:
        unknown = sorted(set(coins) - set(have))
        if unknown:
            raise PipelineInputError(
                f"coins without data for {day}: {unknown}; {len(have)} coins have data that day"
            )
    wanted = set(coins or have)
    out, short = [], {}
    for coin in have:
        if coin in wanted:
            rows = len(storage.load_prices(coin, as_of=day, url=url))
            if rows >= min_rows:
                out.append({"coin": coin, "as_of": day})
            else:
                short[coin] = rows
    if short:
        named = ", ".join(f"{c} ({n})" for c, n in list(short.items())[:10]) + (
            ", ..." if len(short) > 10 else ""
        )
        if coins:
            raise PipelineInputError(
                f"fewer than min_rows={min_rows} days up to {day} for {named}: "
                "not trainable; lower min_rows or train a later day"
            )
        log.info(
            "%d coin(s) have fewer than %d days up to %s, not trained: %s", len(short), min_rows, day, named
        )
    return out


def market_source(market: MarketConfig, day: dt.date, *, stored=None, coins=None, now=None):
    """The :class:`~crypto_ml.sources.Source` of ``market`` as of ``day`` (each market kind
    owns its source: :meth:`crypto_ml.markets.base.Market.source`)."""
    return market.source(day, stored=stored, coins=coins, now=now)


def _check_replay_covers(loader, day: dt.date, logical_date: Any) -> None:
    """A replayed day past the end of the bundled history fails the run, saying how to go on."""
    frame = loader.frame()
    last = frame["date"].max().date() if len(frame) else None
    if last is not None and day <= last:
        return
    from crypto_ml.pipeline.catalog import replay_anchors

    real = as_date(logical_date)
    end = last or dt.date(2017, 9, 22)
    where = (
        f"after the end of the bundled history ({end})"
        if last is not None
        else "before the bundled history starts (2013-04-28)"
    )
    anchor_real, anchor_history = replay_anchors()
    raise ReplayExhausted(
        f"the replay has no data for this run: its day {real} maps to history day {day}, "
        f"{where}. The replay maps CRYPTO_ML_REPLAY_ANCHOR_REAL ({anchor_real}) "
        f"to CRYPTO_ML_REPLAY_ANCHOR_HISTORY ({anchor_history}), "
        f"one day per day. Move the anchors (e.g. CRYPTO_ML_REPLAY_ANCHOR_REAL={real} "
        f"CRYPTO_ML_REPLAY_ANCHOR_HISTORY={end - dt.timedelta(days=90)} replays from 90 days "
        f"before the end), or read a live market: "
        f"AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT'"
    )


def _check_parser_knows(market: MarketConfig, coins: list[str]) -> None:
    """Fail early when the DAG parser's view of the market (the environment's; it never reads the
    database) would refuse today's coins at trigger time: a market defined only in the UI."""
    from crypto_ml.markets import ENV_VAR, env_market, parse_time_coin_ids

    known = parse_time_coin_ids()
    if known is None:
        return
    outside = sorted(set(coins) - set(known))
    if outside:
        parser_view = env_market()
        raise PipelineInputError(
            f"the market ({market.describe()}, from {market.origin}) lists coins the DAG parser does "
            f"not know ({', '.join(outside[:5])}{', ...' if len(outside) > 5 else ''}): the parser "
            f"never reads the database, so it validates crypto_ml_coin's coin against the "
            f"environment's market ({parser_view.describe()}; {parser_view.origin}). "
            f"Define the market in the environment of every Airflow component: "
            f"{ENV_VAR}='crypto-ml-market://{market.exchange or market.kind}?...'"
        )


def _report_gaps_after_stored(loader, stored) -> None:
    """A gap between a coin's last stored day and its first new candle is reported, not filled."""
    from crypto_ml.data.validation import WARNING, Finding

    frame = loader.frame()
    if frame.empty:
        return
    firsts = frame.groupby("coin")["date"].min()
    for coin, first in firsts.items():
        if coin not in stored:
            continue
        last = stored[coin][1]
        missing = (first.date() - last).days - 1
        if missing > 0:
            loader.report.findings.append(
                Finding(
                    coin=coin,
                    rule="date_gap",
                    severity=WARNING,
                    origin=loader.source.name,
                    date=first.date().isoformat(),
                    message=(
                        f"{missing} missing day(s) between {last} (last stored) and "
                        f"{first.date()} (reported, not filled)"
                    ),
                )
            )


def transform(
    coin: str,
    as_of: Any,
    *,
    min_rows: int = 2,
    url: str | None = None,
    market: MarketConfig | Callable[[], MarketConfig] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Validate one coin's stored history up to ``as_of`` and compute its features.

    Reads the project database (what the master DAG stored). If the coin's history up to
    ``as_of`` is not there yet (a single-coin run triggered by hand), it is ingested first from
    the market (default: the environment's, else the replay), which is idempotent; a coin outside
    the market's universe fails, naming the universe. ``market`` may be a function returning it,
    called only then (the DAG's transform looks its Connection up only when it needs it).

    An ``as_of`` after the market's last closed day is refused (:class:`AsOfAfterMarket`): the
    last day of the replay's or the CSV folder's data, or for an exchange the last day whose
    candle had closed at ``now`` (the run's ``run_after``; default: the wall clock). It is only
    looked at when the database does not hold the coin's price of ``as_of``: a stored price is a
    closed candle (the forming one is never stored).

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
        if callable(market):
            market = market()
        _ingest_coin_history(coin, day, url, market or env_market(), now=now)
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
        raise NotEnoughHistory(f"{coin}: {len(df)} rows up to {day}, at least {min_rows} needed to predict")
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
    from crypto_ml.data.features import latest_features

    return latest_features(df)


def _ingest_coin_history(
    coin: str, day: dt.date, url: str, market: MarketConfig, now: dt.datetime | None = None
) -> None:
    from crypto_ml import storage
    from crypto_ml.data.loader import CryptoLoader, UnknownCoinError

    if market.kind == EXCHANGE:
        _ingest_exchange_coin(coin, day, url, market, now=now)
        return
    loader = CryptoLoader(market_source(market, day), as_of=day)
    try:
        coin_id = loader.resolve(coin)
    except UnknownCoinError as exc:
        known = market.parse_time_coin_ids() or []
        if coin in known:
            return  # a known coin with no history yet on that day: transform says so
        raise PipelineInputError(f"{coin}: not a coin of the market ({market.describe()}): {exc}") from None
    frame = loader.frame()
    if len(frame):  # the market's last day: its newest row, whichever coin it belongs to
        _refuse_after(coin, day, frame["date"].max().date(), market)
    part = frame[frame["coin"] == coin_id]
    storage.store_prices(part, source=loader.source.name, url=url)
    log.info("%s: stored %d rows of history up to %s before transforming", coin_id, len(part), day)


def _ingest_exchange_coin(
    coin: str, day: dt.date, url: str, market: MarketConfig, now: dt.datetime | None = None
) -> None:
    """One coin's missing candles up to ``day`` from the exchange, if it is in today's universe."""
    from crypto_ml import storage
    from crypto_ml.data.ingest import ingest
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.markets import last_closed_day

    clock = now or dt.datetime.now(dt.UTC)
    _refuse_after(
        coin,
        day,
        last_closed_day(clock),
        market,
        clock=f", candles closed by {as_utc(clock):%Y-%m-%d %H:%M} UTC",
    )
    stored = storage.price_range(url=url)
    source = market_source(market, day, stored=stored, coins=[coin], now=now)
    loader = CryptoLoader(source, as_of=day)
    if coin not in source.universe_ids:
        if coin in stored:
            log.warning(
                "%s is no longer in the universe of %s: predicting from its stored history",
                coin,
                market.describe(),
            )
            return
        shown = ", ".join(sorted(source.universe_ids)[:10])
        raise PipelineInputError(
            f"{coin}: not in the universe of {market.market_of(coin).describe()} today "
            f"({len(source.universe_ids)} coins: {shown}{', ...' if len(source.universe_ids) > 10 else ''})"
        )
    if coin in loader.report.failed_coins:
        from crypto_ml.sources.base import SourceError

        raise SourceError(loader.report.failed_coins[coin])  # the task's retries may help
    result = ingest(loader=loader, url=url)
    log.info(
        "%s: stored %d new rows up to %s from %s before transforming",
        coin,
        result.inserted,
        day,
        market.describe(),
    )
