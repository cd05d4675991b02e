"""The replay (the default, no network): the bundled 2013–2017 history revealed day by day, a
run's day mapped onto it with ``CRYPTO_ML_REPLAY_ANCHOR_REAL`` ↦ ``CRYPTO_ML_REPLAY_ANCHOR_HISTORY``.

The replay's facts (its coin ids, the anchors, the day mapping) live here, cheap to import at
parse time; :mod:`crypto_ml.pipeline.catalog` re-exports them for the DAG files."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from crypto_ml.markets.base import Market
from crypto_ml.markets.ids import REPLAY
from crypto_ml.settings import env_int, env_str
from crypto_ml.utils.dates import as_date

#: The schedule's start ↦ this day of the bundled history (env overrides below).
DEFAULT_ANCHOR_REAL = "2026-11-01"
DEFAULT_ANCHOR_HISTORY = "2017-06-01"


@lru_cache(maxsize=1)
def bundled_coin_ids() -> tuple[str, ...]:
    """Ids of the bundled coins, sorted (from ``crypto_ml/data/coins.csv``)."""
    with resources.files("crypto_ml").joinpath("data", "coins.csv").open(newline="") as fh:
        return tuple(sorted(row["coin"] for row in csv.DictReader(fh)))


def replay_coin_ids() -> list[str]:
    """Coins of the replay: the bundled ones, plus ``CRYPTO_ML_SYNTHETIC_COINS`` synthetic ones
    (``synthetic-00001``...) when the deployment is configured with synthetic coins."""
    n = env_int("CRYPTO_ML_SYNTHETIC_COINS", 0)
    return [*bundled_coin_ids(), *(f"synthetic-{k:05d}" for k in range(1, n + 1))]


def replay_anchors() -> tuple[dt.date, dt.date]:
    """``(real day, history day)``: ``CRYPTO_ML_REPLAY_ANCHOR_REAL`` ↦
    ``CRYPTO_ML_REPLAY_ANCHOR_HISTORY`` (default 2026-11-01 ↦ 2017-06-01)."""
    return (
        as_date(
            env_str("CRYPTO_ML_REPLAY_ANCHOR_REAL", DEFAULT_ANCHOR_REAL), what="CRYPTO_ML_REPLAY_ANCHOR_REAL"
        ),
        as_date(
            env_str("CRYPTO_ML_REPLAY_ANCHOR_HISTORY", DEFAULT_ANCHOR_HISTORY),
            what="CRYPTO_ML_REPLAY_ANCHOR_HISTORY",
        ),
    )


def replay_day(real_day, *, anchor_real=None, anchor_history=None) -> dt.date:
    """The history day a run on ``real_day`` replays (see :func:`replay_anchors`), one day per day."""
    real, hist = replay_anchors()
    real = as_date(anchor_real) if anchor_real else real
    hist = as_date(anchor_history) if anchor_history else hist
    return hist + (as_date(real_day) - real)


@dataclass(frozen=True)
class ReplayMarket(Market):
    """``crypto-ml-market://replay``: no extra field."""

    name = REPLAY
    keys = frozenset()

    @property
    def source_name(self) -> str:
        return "replay:bundled"

    def describe(self) -> str:
        return "replay of the bundled 2013-2017 history"

    def market_day(self, day, *, now: dt.datetime | None = None) -> dt.date:
        return replay_day(day)

    def parse_time_coin_ids(self) -> list[str]:
        return replay_coin_ids()

    def source(self, day: dt.date, *, stored=None, coins=None, now=None):
        from crypto_ml.sources.replay import ReplaySource

        return ReplaySource(today=day)
