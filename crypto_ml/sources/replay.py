"""Replay: reveal a source's history day by day, as if it were arriving live."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from crypto_ml.data.validation import _parse_dates
from crypto_ml.sources.base import Source, as_date, resolve_source


class ReplaySource(Source):
    """Show another source's rows only up to a moving *today*.

    A scheduled run for logical date ``D`` maps ``D`` onto a day of the history with
    :meth:`history_day`, so a daily schedule and a backfill over past dates both see exactly the
    rows that would have existed then, never a day more.

    :param base: the source to replay (default: the bundled dataset).
    :param today: the last visible day of the history.

    Rows whose date cannot be parsed are passed on unchanged, so validation quarantines and
    reports them instead of the replay hiding them.
    """

    def __init__(self, base: Source | None = None, *, today: dt.date | str) -> None:
        self.base = resolve_source(base)
        self.today = as_date(today)
        self.name = f"replay:{self.base.name}"

    @staticmethod
    def history_day(
        logical_date: dt.date | dt.datetime | str,
        *,
        anchor_real: dt.date | str,
        anchor_history: dt.date | str,
    ) -> dt.date:
        """Map a run's logical date onto the replayed history: ``anchor_real`` ↦ ``anchor_history``,
        one day per day (the DAGs use :func:`crypto_ml.markets.replay.replay_day`, the configured
        anchors)."""
        return as_date(anchor_history) + (as_date(logical_date) - as_date(anchor_real))

    def advance(self, days: int = 1) -> dt.date:
        """Move *today* forward (or back, with a negative number) and return the new day."""
        self.today = self.today + dt.timedelta(days=days)
        return self.today

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        day = self.today if as_of is None else min(self.today, as_date(as_of))
        raw = self.base.read(as_of=day)
        dates = _parse_dates(raw["date"])
        keep = dates.isna() | (dates <= pd.Timestamp(day))
        return raw.loc[keep.to_numpy()].reset_index(drop=True)

    def coin_metadata(self) -> pd.DataFrame | None:
        return self.base.coin_metadata()

    @property
    def report(self):
        return self.base.report
