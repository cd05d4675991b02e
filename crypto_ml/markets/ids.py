"""The leaf of the market code: names, coin ids and the closed-day clock (no other crypto_ml
module, no Airflow, no pandas). The sources never import the market code: a source is given its
market and asks it (``market.coin_id(symbol)``, ``market.market_day(day, now=...)``), so the
imports run one way, markets -> sources."""

from __future__ import annotations

import datetime as dt
import re

#: The Connection id and type of the market setting.
CONN_ID = "crypto_ml_market"
CONN_TYPE = "crypto_ml_market"
#: The environment variable Airflow itself reads for that Connection.
ENV_VAR = "AIRFLOW_CONN_CRYPTO_ML_MARKET"
#: The data paths of a market (:attr:`~crypto_ml.markets.Market.kind`).
REPLAY, CSV, EXCHANGE = "replay", "csv", "exchange"
#: Shape of a coin id, checked at trigger time when the universe is not known at parse time.
COIN_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class MarketConfigError(ValueError):
    """The market setting is malformed (a symbol, a field): says which and what is valid."""


def coin_id(symbol: str) -> str:
    """``"BTC/USDT"`` ↦ ``"btc-usdt"``: the id of an exchange market everywhere in Crypto-ML."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or ":" in quote:
        raise MarketConfigError(f"{symbol!r} is not a spot market symbol like 'BTC/USDT'")
    return f"{_slug(base)}-{_slug(quote)}"


def symbol_of(coin: str) -> str:
    """``"btc-usdt"`` ↦ ``"BTC/USDT"`` (the inverse of :func:`coin_id` for exchange markets)."""
    base, sep, quote = coin.rpartition("-")
    if not sep or not base or not quote:
        raise MarketConfigError(f"{coin!r} is not an exchange coin id like 'btc-usdt'")
    return f"{base.upper()}/{quote.upper()}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "", text.strip().lower())


def last_closed_day(now: dt.datetime) -> dt.date:
    """The newest UTC day whose daily candle has closed at ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def env_var(conn_id: str = CONN_ID) -> str:
    """The environment variable Airflow reads for Connection ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"
