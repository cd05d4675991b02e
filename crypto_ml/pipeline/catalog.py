"""Light facts the DAG files need at parse time: no pandas, no data loading, no database.

The scheduler parses DAG files every few seconds, so everything here is cheap: the bundled coin
ids from a 4 KB CSV, the model names (from :mod:`crypto_ml.forecasting.registry`), and the mapping
of a schedule date onto the replayed history.
"""

from __future__ import annotations

from crypto_ml.forecasting.registry import DEFAULT_MODEL, MODEL_NAMES  # noqa: F401 - for the DAG files
from crypto_ml.markets.replay import (  # noqa: F401 - the replay's facts, for the DAG files
    DEFAULT_ANCHOR_HISTORY,
    DEFAULT_ANCHOR_REAL,
    bundled_coin_ids,
    replay_anchors,
    replay_coin_ids,
    replay_day,
)

#: Largest forecast horizon a pipeline run accepts (days).
MAX_HORIZON = 60
#: Coin runs at once (the coin DAG's ``max_active_runs``; ``CRYPTO_ML_COIN_MAX_ACTIVE_RUNS``).
#: A coin run mostly waits (on the scheduler, the triggerer, the engine): on the 89-coin day
#: 16 at once took 82.5 s, 64 at once 59.4 s, with 2 cores not yet busy.
DEFAULT_COIN_MAX_ACTIVE_RUNS = 64


def coin_ids() -> list[str] | None:
    """Coins a pipeline run accepts, as far as they are known at parse time (no network, no
    database): the replay's, the CSV folder's or the exchange's explicit symbols; ``None`` for a
    top-N universe, resolved each day (see :mod:`crypto_ml.markets`)."""
    from crypto_ml.markets import parse_time_coin_ids

    return parse_time_coin_ids()


def coin_max_active_runs() -> int:
    """How many coin runs may be active at once: ``CRYPTO_ML_COIN_MAX_ACTIVE_RUNS`` (read when the
    DAG is parsed), default :data:`DEFAULT_COIN_MAX_ACTIVE_RUNS`. The others wait queued."""
    from crypto_ml.settings import env_int

    return env_int("CRYPTO_ML_COIN_MAX_ACTIVE_RUNS", DEFAULT_COIN_MAX_ACTIVE_RUNS, minimum=1)


def coin_param_schema() -> dict:
    """Keywords of the ``coin`` param: the known coins as an enum (default ``bitcoin`` or the
    first), or the shape of a coin id when the universe is only known at run time (no default:
    the coin must be given)."""
    from crypto_ml.markets.ids import COIN_ID_PATTERN

    ids = coin_ids()
    if not ids:
        return {"default": None, "pattern": COIN_ID_PATTERN}
    return {"default": "bitcoin" if "bitcoin" in ids else ids[0], "enum": ids}


def market_day_iso(real_day, now=None) -> str:
    """The market day of a run whose logical day is ``real_day``, as ``YYYY-MM-DD`` (a DAG
    template macro, evaluated in the task): the replayed history day for the replay, the day
    itself (or the last one closed at ``now``) for an exchange or a CSV folder. Reads the
    ``crypto_ml_market`` Connection.

    For a DAG run, call :func:`run_market_day`."""
    from crypto_ml.hooks.market import CryptoMarketHook

    return CryptoMarketHook().get_market().market_day(real_day, now=now).isoformat()


def run_market_day(dag_run) -> str:
    """The market day of a DAG run (``YYYY-MM-DD``): :func:`market_day_iso` of its logical date
    (or, without one, the day it runs after), with its ``run_after`` as the time a day's candle
    must have closed by. The coin DAG's ``market_day`` macro (in the transform) and its submit
    trigger both call it, so every task of a run names the same day however late it starts (a
    transform at 23:59 UTC and a submit at 00:01 against the wall clock would name two days), and
    a run cleared a week later predicts the day it predicted the first time. Reads the market
    Connection: in the triggerer, call it off the event loop."""
    return market_day_iso(dag_run.logical_date or dag_run.run_after, dag_run.run_after)
