"""The source interface."""

from __future__ import annotations

import abc
import datetime as dt
from os import PathLike
from typing import TYPE_CHECKING

from crypto_ml.utils.dates import as_date  # noqa: F401 - re-exported: the sources' as-of days

if TYPE_CHECKING:
    import pandas as pd

    from crypto_ml.data.validation import ValidationReport


class SourceError(RuntimeError):
    """A source could not be read at all (as opposed to a bad row, which is quarantined)."""


class Source(abc.ABC):
    """A source of daily OHLCV rows for many coins.

    :meth:`read` returns a *raw* long frame: columns ``coin, name, date, open, high, low, close,
    volume, market_cap`` as the source wrote them (strings or numbers), plus ``origin`` and
    ``line`` naming where each row came from, and optionally ``synthetic``. Parsing and validation
    are the loader's job (:func:`crypto_ml.data.validation.parse_and_validate`), the same for every
    source.

    A source that fails for some coins but not others reports those coins in ``report`` (a
    :class:`~crypto_ml.data.validation.ValidationReport` whose ``failed_coins`` maps coin to reason) and
    returns the rows it has.
    """

    #: Short label shown in summaries and stored with every price row.
    name: str = "source"

    @abc.abstractmethod
    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        """Return the raw long frame, rows dated after ``as_of`` left out when it is given."""

    def coin_metadata(self) -> pd.DataFrame | None:
        """Optional metadata (``coin, name, symbol, rank``) beyond what :meth:`read` returns."""
        return None

    def label_of(self, coin: str) -> str:
        """The label stored with ``coin``'s rows (:attr:`name`; a source of several markets
        answers with the coin's own market)."""
        return self.name

    def seed_label_of(self, coin: str) -> str | None:
        """The label of ``coin``'s rows read from a seed (see ``seeded``), if the source has one."""
        return None

    @property
    def report(self) -> ValidationReport | None:
        """Per-coin failures of the last :meth:`read`, if the source can fail coin by coin."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def resolve_source(source: Source | str | PathLike | None) -> Source:
    """``None`` → the bundled dataset; a path → :class:`CSVSource`; a source → itself."""
    from crypto_ml.sources.bundled import BundledSource
    from crypto_ml.sources.csv import CSVSource

    if source is None:
        return BundledSource()
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, PathLike)):
        if str(source) == "bundled":
            return BundledSource()
        return CSVSource(source)
    raise TypeError(f"source must be a Source, a path or None, not {type(source).__name__}")
