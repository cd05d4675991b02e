"""Which market the pipeline reads: one setting, the Airflow Connection ``crypto_ml_market``.

One class per kind of market (the Connection's *host* field names one; :mod:`.registry` picks):

- :class:`ReplayMarket` ``replay`` (the default, no network): the bundled 2013–2017 history
  revealed day by day (:mod:`.replay`);
- :class:`CSVMarket` ``csv``: a folder of the user's own CSV files (``extra.path``), re-read
  every day (:mod:`.csv`);
- :class:`ExchangeMarket`, any exchange id ccxt supports (``binance``, ``kraken``, ...): daily
  candles of ``extra.symbols`` or of the top ``extra.top`` spot markets of ``extra.quote``
  (:mod:`.exchange`);
- :class:`SeededMarket`, an exchange with ``extra.seed``: a CSV folder's history first, then the
  exchange's candles after it (:mod:`.seeded`);
- :class:`MultiMarket` ``multi``: several exchange markets, each its own Connection named in
  ``extra.markets``, read and fanned out as one; coin ids then name their exchange
  (``kraken.btc-usd``) (:mod:`.multi`).

Each class owns its Connection fields, its data source (``market.source(day, stored=...)``), the
mapping of a run's day to the market's day (``market.market_day(day, now=...)``) and the coin ids
known at parse time. Define the setting like any Airflow Connection, in the environment (what the
DAG parser sees too)::

    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT'
    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://kraken?symbols=BTC/USD&api_url=http://127.0.0.1:8000'
    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://csv?path=/data/prices'

or in the UI / ``airflow connections add`` (type "Crypto-ML market"). One parser reads it for the
CLI, the DAG parser and the tasks (:meth:`Market.from_env_value`); an unreadable setting fails
naming the field, never becomes the replay. Cheap to import (no Airflow, no pandas, no network).

Coin ids: a bundled or CSV coin keeps its slug (``bitcoin``); an exchange market's id is its
symbol in lower case with ``/`` as ``-`` (``BTC/USDT`` ↦ ``btc-usdt``), after ``<exchange>.``
for a market of several (``binance.btc-usdt``). :func:`coin_id` and :func:`symbol_of` are that
mapping; a market's own :meth:`ExchangeMarket.coin_id` adds its prefix.
"""

from __future__ import annotations

import logging
import os

from crypto_ml.markets.base import Market, env_member
from crypto_ml.markets.csv import CSVMarket
from crypto_ml.markets.exchange import ExchangeMarket
from crypto_ml.markets.ids import (
    COIN_ID_PATTERN,
    CONN_ID,
    CONN_TYPE,
    CSV,
    ENV_VAR,
    EXCHANGE,
    REPLAY,
    MarketConfigError,
    coin_id,
    env_var,
    last_closed_day,
    symbol_of,
)
from crypto_ml.markets.multi import MultiMarket
from crypto_ml.markets.registry import KINDS
from crypto_ml.markets.replay import ReplayMarket
from crypto_ml.markets.seeded import SeededMarket

#: The name the project used before the kinds became classes.
MarketConfig = Market

__all__ = [
    "COIN_ID_PATTERN",
    "CONN_ID",
    "CONN_TYPE",
    "CSV",
    "CSVMarket",
    "ENV_VAR",
    "EXCHANGE",
    "ExchangeMarket",
    "KINDS",
    "Market",
    "MarketConfig",
    "MarketConfigError",
    "MultiMarket",
    "REPLAY",
    "ReplayMarket",
    "SeededMarket",
    "coin_id",
    "env_market",
    "env_member",
    "env_var",
    "last_closed_day",
    "parse_time_coin_ids",
    "symbol_of",
]


def env_market(conn_id: str = CONN_ID) -> Market:
    """The market as the environment defines it (``AIRFLOW_CONN_<ID>``), else the replay default.
    No Airflow, no database: what the DAG parser, the ``crypto-ml`` CLI and (when the variable is
    the Connection found) the tasks' hook read, with one parser: :meth:`Market.from_env_value`."""
    value = os.environ.get(env_var(conn_id))
    if value is None or not value.strip():
        return ReplayMarket()
    return Market.from_env_value(value, origin=env_var(conn_id))


def parse_time_coin_ids() -> list[str] | None:
    """The coin ids ``crypto_ml_coin`` accepts at trigger time (``None``: any id of the right
    shape; the run checks it against the day's universe). Never raises: a broken setting is
    reported by the tasks that use it (the first one fails naming the field), and logged here,
    so the DAG stays visible with its failing runs instead of vanishing as an import error."""
    try:
        return env_market().parse_time_coin_ids()
    except (MarketConfigError, OSError) as exc:
        logging.getLogger(__name__).error(
            "the market setting cannot be read (every run will fail on it): %s", exc
        )
        return None


def conn_fields() -> dict[str, dict]:
    """The connection form's extra fields: every kind's, in the registry's order."""
    out: dict[str, dict] = {}
    for kind in reversed(KINDS):
        out.update(kind.conn_fields)
    return out
