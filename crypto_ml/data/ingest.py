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
    #: ``{coin: reason}``: the source served less history than asked (an exchange's depth cap, a
    #: first candle after the day asked for), with the days missing and what to do
    history_limits: dict[str, str] = field(default_factory=dict)
    #: ``{coin: text}``: what is no failure but worth a line (delisted since, not listed yet)
    notes: dict[str, str] = field(default_factory=dict)
    #: ``{coin: rows}`` stored from a seed (``extra.seed``) rather than the source itself
    seeded_by_coin: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        text = (
            f"stored {self.rows} rows of {self.coins} coins: {self.inserted} new, {self.updated} "
            f"already present (updated in place); {self.quarantined_new} new quarantined rows "
            f"({self.errors} in this load), {self.warnings} warnings."
        )
        if self.seeded_by_coin:
            text += (
                f"\n{sum(self.seeded_by_coin.values())} rows of {len(self.seeded_by_coin)} "
                "coins from the seed"
            )
        for coin, reason in self.history_limits.items():
            text += f"\nLIMITED {coin}: {reason}"
        for coin, note in self.notes.items():
            text += f"\nNOTE {coin}: {note}"
        if self.failed_coins:
            text += f"\n{len(self.failed_coins)} coins failed: {', '.join(self.failed_coins)}"
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
    :param loader: an already built :class:`~crypto_ml.data.loader.CryptoLoader` to store from.

    Each coin is stored in its own transaction, so a failure names its coin and leaves the coins
    already stored intact; a re-run updates the same rows in place and inserts none.
    """
    import pandas as pd

    from crypto_ml import storage
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.data.validation import WARNING, Finding

    url = storage.database_url(url)
    storage.migrate(url)
    if loader is None:
        loader = CryptoLoader(source, as_of=as_of, synthetic=synthetic, seed=seed)
    if isinstance(since, Mapping):
        frame = loader.frame(as_of=as_of)
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
    source = loader.source
    result.history_limits = dict(getattr(source, "limits", {}) or {})
    result.notes = dict(getattr(source, "notes", {}) or {})
    seeded = getattr(source, "seeded", {}) or {}
    for coin, text in result.history_limits.items():  # the run's summary lists them with the rest
        loader.report.findings.append(
            Finding(coin=coin, rule="history_limit", severity=WARNING, message=text, origin=source.name)
        )
    result.warnings = len(loader.report.warnings)
    for coin, part in frame.groupby("coin", sort=True):
        label = source.label_of(coin)  # several markets: the coin's own market
        parts = [(part, label)]
        if coin in seeded:  # the seed's days are stored as the seed's, the rest as the source's
            first, last = seeded[coin]
            from_seed = (part["date"] >= pd.Timestamp(first)) & (part["date"] <= pd.Timestamp(last))
            parts = [(part[~from_seed], label), (part[from_seed], source.seed_label_of(coin))]
            result.seeded_by_coin[coin] = int(from_seed.sum())
        written_new = 0
        for rows, label in parts:
            if rows.empty:
                continue
            written = storage.store_prices(rows, source=label, url=url)
            result.inserted += written.inserted
            result.updated += written.updated
            written_new += written.inserted
        result.new_by_coin[coin] = written_new
        if progress is not None:
            progress(coin, len(part))
    result.quarantined_new = storage.store_quarantine(
        loader.report.errors, source=loader.source.name, url=url
    ).inserted
    return result
