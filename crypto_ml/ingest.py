"""Load → validate → store: the ingest step shared by the CLI and the DAGs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from crypto_ml.sources.base import Source, as_date

@dataclass
class IngestResult:
    """What one ingest did. ``inserted`` + ``updated`` = rows written; nothing is written twice."""

    source: str
    coins: int
    rows: int
    inserted: int
    updated: int
    quarantined_new: int
    errors: int
    warnings: int
    failed_coins: dict[str, str] = field(default_factory=dict)
    new_by_coin: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        text = (
            f"stored {self.rows} rows of {self.coins} coins: {self.inserted} new, {self.updated} "
            f"already present (updated in place); {self.quarantined_new} new quarantined rows "
            f"({self.errors} in this load), {self.warnings} warnings."
        )
        for coin, reason in self.failed_coins.items():
            text += f"\nFAILED {coin}: {reason}"
        return text


def ingest(
    source: Source | str | None = None,
    *,
    as_of: dt.date | str | None = None,
    since: dt.date | str | Mapping[str, dt.date] | None = None,
    synthetic: int = 0,
    seed: int = 0,
    url: str | None = None,
    progress: Callable[[str, int], None] | None = None,
    loader=None,
) -> IngestResult:
    """Load and validate prices, then upsert them (and quarantined rows) into the project DB.

    :param as_of: store nothing dated after this day (point in time).
    :param since: store only rows dated after this day (the new ones of a daily run), or a mapping
        coin → last day already stored (coins not in it are stored from their first day).
    :param progress: called with ``(coin, rows)`` after each coin is stored.
    :param loader: an already built :class:`~crypto_ml.data_loader.CryptoLoader` to store from.

    Each coin is stored in its own transaction, so a failure names its coin and leaves the coins
    already stored intact; a re-run updates the same rows in place and inserts none.
    """
    from crypto_ml import storage
    from crypto_ml.data_loader import CryptoLoader

    url = storage.database_url(url)
    storage.migrate(url)
    if loader is None:
        loader = CryptoLoader(source, as_of=as_of, synthetic=synthetic, seed=seed)
    if isinstance(since, Mapping):
        frame = loader.frame(as_of=as_of)
        import pandas as pd

        last = pd.to_datetime(frame["coin"].map({c: as_date(d).isoformat() for c, d in since.items()}))
        frame = frame[last.isna() | (frame["date"] > last)].reset_index(drop=True)
    else:
        frame = loader.frame(since=since, as_of=as_of)
    result = IngestResult(
        source=loader.source.name,
        coins=int(frame["coin"].nunique()),
        rows=len(frame),
        inserted=0,
        updated=0,
        quarantined_new=0,
        errors=len(loader.report.errors),
        warnings=len(loader.report.warnings),
        failed_coins=dict(loader.report.failed_coins),
    )
    for coin, part in frame.groupby("coin", sort=True):
        written = storage.store_prices(part, source=loader.source.name, url=url)
        result.inserted += written.inserted
        result.updated += written.updated
        result.new_by_coin[coin] = written.inserted
        if progress is not None:
            progress(coin, len(part))
    result.quarantined_new = storage.store_quarantine(
        loader.report.errors, source=loader.source.name, url=url
    ).inserted
    return result
