"""Prices: daily bars and the rows validation quarantined.

Every write is an idempotent upsert on the table's natural key; each function opens its own
transaction on the database at ``url`` (see :func:`crypto_ml.storage.db.database_url`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from crypto_ml.storage.db import UpsertResult, get_engine, session_scope, upsert
from crypto_ml.storage.models import Price, QuarantinedRow, utcnow
from crypto_ml.utils.dates import as_date

PRICE_VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "market_cap"]


def store_prices(frame: pd.DataFrame, *, source: str, url: str | None = None) -> UpsertResult:
    """Upsert daily bars from a long frame; a restated day replaces the stored one.

    Parameters
    ----------
    frame
        Columns ``coin, date, open, high, low, close, volume, market_cap`` and optionally ``synthetic``
        (``name`` and other columns are ignored); ``date`` is datetime64. NaN is stored as NULL.
    source
        Where the data came from (source name or URL).
    """
    missing = {"coin", "date", *PRICE_VALUE_COLUMNS} - set(frame.columns)
    if missing:
        raise ValueError(f"store_prices: frame lacks columns {sorted(missing)}")
    if frame.empty:
        return UpsertResult()
    data = frame[["coin", *PRICE_VALUE_COLUMNS]].astype(object)
    data = data.where(frame[["coin", *PRICE_VALUE_COLUMNS]].notna(), None)
    data["date"] = pd.to_datetime(frame["date"]).dt.date
    data["synthetic"] = frame["synthetic"].fillna(False).astype(bool) if "synthetic" in frame else False
    data["source"] = source
    data["ingested_at"] = utcnow()
    rows = data.to_dict("records")
    with session_scope(url) as session:
        return upsert(session, Price, rows)


def store_quarantine(findings: Iterable[Any], *, source: str, url: str | None = None) -> UpsertResult:
    """Store the ``error`` findings of a validation run, once per (coin, origin, line, rule).

    Parameters
    ----------
    findings
        Objects with ``coin, rule, severity, message, origin, line, date, raw`` attributes, e.g.
        :class:`crypto_ml.data.validation.Finding`. Other severities are skipped.
    source
        Where the data came from.
    """
    now = utcnow()
    rows = [
        {
            "coin": str(f.coin),
            "date": as_date(f.date) if f.date else None,
            "origin": f.origin or "",
            "line": -1 if f.line is None else int(f.line),
            "rule": f.rule,
            "severity": f.severity,
            "message": f.message,
            "raw": dict(f.raw) if f.raw else None,
            "source": source,
            "first_seen": now,
        }
        for f in findings
        if f.severity == "error"
    ]
    with session_scope(url) as session:
        return upsert(
            session,
            QuarantinedRow,
            rows,
            update_columns=["date", "severity", "message", "raw", "source"],
            constraint="uq_quarantined_rows_coin_origin_line_rule",
        )


def price_range(url: str | None = None) -> dict[str, tuple[dt.date, dt.date]]:
    """Return ``{coin: (first_date, last_date)}`` of the stored prices."""
    stmt = (
        select(Price.coin, func.min(Price.date), func.max(Price.date))
        .group_by(Price.coin)
        .order_by(Price.coin)
    )
    with get_engine(url).connect() as conn:
        return {coin: (first, last) for coin, first, last in conn.execute(stmt)}


def coins_on(day: Any, url: str | None = None) -> list[str]:
    """Coins with a stored price dated ``day``, sorted."""
    stmt = select(Price.coin).where(Price.date == as_date(day)).order_by(Price.coin)
    with get_engine(url).connect() as conn:
        return list(conn.execute(stmt).scalars())


def load_closes(coin: str, *, as_of: Any, url: str | None = None) -> tuple[list[dt.date], list[float | None]]:
    """One coin's stored closes up to ``as_of``, oldest first: ``(dates, closes)`` (a missing
    close is None). One narrow query and no frame: what the engine reads for a request that sends
    no closes (``history="database"``)."""
    stmt = (
        select(Price.date, Price.close)
        .where(Price.coin == coin, Price.date <= as_date(as_of))
        .order_by(Price.date)
    )
    with get_engine(url).connect() as conn:
        rows = conn.execute(stmt).all()
    return [r[0] for r in rows], [None if r[1] is None else float(r[1]) for r in rows]


def load_prices(coin: str, *, as_of: Any = None, url: str | None = None) -> pd.DataFrame:
    """One coin's stored bars up to ``as_of``, oldest first, in the loader's ``get_df`` columns
    (``Date, Open, High, Low, Close, Volume, Market Cap``)."""
    stmt = select(
        Price.date, Price.open, Price.high, Price.low, Price.close, Price.volume, Price.market_cap
    ).where(Price.coin == coin)
    if as_of is not None:
        stmt = stmt.where(Price.date <= as_date(as_of))
    stmt = stmt.order_by(Price.date)
    with get_engine(url).connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=["Date", "Open", "High", "Low", "Close", "Volume", "Market Cap"])
    frame["Date"] = pd.to_datetime(frame["Date"])
    for col in ("Open", "High", "Low", "Close", "Volume", "Market Cap"):
        frame[col] = frame[col].astype("float64")
    return frame
