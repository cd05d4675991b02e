"""Domain-level reads and writes of the crypto_ml database.

Every write is an idempotent upsert on the table's natural key, so a retried task never duplicates a
row. Each function opens its own transaction on the database at ``url`` (see
:func:`crypto_ml.storage.db.database_url`); call :func:`crypto_ml.storage.db.migrate` once first.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crypto_ml.storage.db import UpsertResult, get_engine, session_scope, upsert
from crypto_ml.storage.models import (
    Base,
    ModelVersion,
    Prediction,
    Price,
    QuarantinedRow,
    TradeRequest,
    utcnow,
)

PRICE_VALUE_COLUMNS = ["open", "high", "low", "close", "volume", "market_cap"]


def _to_date(value: Any) -> dt.date:
    """Accept a date, datetime, pandas Timestamp or ISO string; return a plain date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    raise TypeError(f"expected a date, datetime or ISO date string, got {value!r}")


def _as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]


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
        :class:`crypto_ml.validation.Finding`. Other severities are skipped.
    source
        Where the data came from.
    """
    now = utcnow()
    rows = [
        {
            "coin": str(f.coin),
            "date": _to_date(f.date) if f.date else None,
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


def record_model_version(
    *,
    coin: str,
    model: str,
    train_start: Any,
    train_end: Any,
    n_obs: int | None,
    params: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    artifact_path: str | None,
    fingerprint: str,
    url: str | None = None,
) -> int:
    """Record a trained model and return its version number.

    Versions count up from 1 per (coin, model). Recording the same training again (same coin, model,
    ``train_end`` and ``fingerprint``) returns the existing version. When a concurrent writer takes
    the next number first, the insert fails on the primary key and is retried once.
    """
    train_end = _to_date(train_end)
    key = (
        (ModelVersion.coin == coin)
        & (ModelVersion.model == model)
        & (ModelVersion.train_end == train_end)
        & (ModelVersion.fingerprint == fingerprint)
    )
    for attempt in range(2):
        try:
            with session_scope(url) as session:
                existing = session.scalar(select(ModelVersion.version).where(key))
                if existing is not None:
                    return existing
                latest = session.scalar(
                    select(func.max(ModelVersion.version)).where(
                        (ModelVersion.coin == coin) & (ModelVersion.model == model)
                    )
                )
                version = (latest or 0) + 1
                session.add(
                    ModelVersion(
                        coin=coin,
                        model=model,
                        version=version,
                        train_start=None if train_start is None else _to_date(train_start),
                        train_end=train_end,
                        n_obs=n_obs,
                        trained_at=utcnow(),
                        params=params,
                        metrics=metrics,
                        artifact_path=artifact_path,
                        fingerprint=fingerprint,
                    )
                )
                session.flush()
                return version
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def latest_model_version(
    coin: str, model: str, *, as_of: Any = None, url: str | None = None
) -> dict[str, Any] | None:
    """Return the newest version of (coin, model) trained on data up to ``as_of`` (inclusive).

    "Newest" is the latest training window end, then the highest version number (a backtest
    may record older windows after a production model). ``as_of=None`` means no restriction.
    Returns ``None`` when there is no such version.
    """
    stmt = select(ModelVersion.__table__).where(ModelVersion.coin == coin, ModelVersion.model == model)
    if as_of is not None:
        stmt = stmt.where(ModelVersion.train_end <= _to_date(as_of))
    with get_engine(url).connect() as conn:
        order = (ModelVersion.train_end.desc(), ModelVersion.version.desc())
        row = conn.execute(stmt.order_by(*order).limit(1)).first()
    return None if row is None else dict(row._mapping)


def store_prediction(
    *,
    coin: str,
    as_of: Any,
    model: str,
    version: int,
    horizon: int,
    values: Sequence[float],
    last_close: float,
    run_id: str | None = None,
    url: str | None = None,
    intervals: dict[str, Any] | None = None,
    interval_method: str | None = None,
    overwrite: bool = True,
) -> UpsertResult:
    """Store a forecast path (day ``as_of + 1`` first); re-storing the same key updates it in place,
    or with ``overwrite=False`` leaves the stored row untouched (the pipeline writes it once).

    ``expected_return`` is ``values[-1] / last_close - 1``. ``intervals`` are the path's bounds per
    level, ``{"80": {"lower": [...], "upper": [...]}, ...}`` with one bound per step (the engine's
    result carries them); re-storing without intervals keeps the ones already stored.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("store_prediction: values is empty")
    if not last_close or not math.isfinite(last_close):
        raise ValueError(f"store_prediction: last_close must be a finite non-zero price, got {last_close!r}")
    intervals = check_intervals(intervals, len(values), coin=coin, as_of=as_of)
    row = {
        "coin": coin,
        "as_of": _to_date(as_of),
        "model": model,
        "version": int(version),
        "horizon": int(horizon),
        "values": values,
        "last_close": float(last_close),
        "expected_return": values[-1] / float(last_close) - 1.0,
        "run_id": run_id,
        "created_at": utcnow(),
    }
    update_columns = ["values", "last_close", "expected_return", "run_id"]
    if intervals is not None:
        row.update(intervals=intervals, interval_method=interval_method or "conformal")
        update_columns += ["intervals", "interval_method"]
    with session_scope(url) as session:
        return upsert(session, Prediction, [row], update_columns=update_columns if overwrite else [])


def check_intervals(intervals: Any, steps: int, *, coin: str = "?", as_of: Any = None) -> dict[str, Any] | None:
    """``intervals`` as ``{level: {"lower": [floats], "upper": [floats]}}`` with ``steps`` finite
    bounds each and lower <= upper, or a ``ValueError`` naming the coin, day, level and problem."""
    if intervals is None:
        return None
    who = f"prediction of {coin!r} as of {as_of}"
    if not isinstance(intervals, dict):
        raise ValueError(f"{who}: intervals must be an object keyed by level, got {type(intervals).__name__}")
    out: dict[str, Any] = {}
    for level, bounds in intervals.items():
        try:
            pct = float(level)
        except (TypeError, ValueError):
            raise ValueError(f"{who}: interval level {level!r} is not a number (percent)") from None
        if not 0 < pct < 100:
            raise ValueError(f"{who}: interval level {level!r} must be between 0 and 100")
        if not isinstance(bounds, dict) or set(bounds) != {"lower", "upper"}:
            raise ValueError(f"{who}: interval {level!r} must have exactly 'lower' and 'upper' lists")
        lower, upper = bounds["lower"], bounds["upper"]
        if not isinstance(lower, (list, tuple)) or not isinstance(upper, (list, tuple)) or not (
            len(lower) == len(upper) == steps
        ):
            raise ValueError(f"{who}: interval {level!r} needs {steps} lower and {steps} upper bounds")
        lower = [float(v) for v in lower]
        upper = [float(v) for v in upper]
        for step, (lo, hi) in enumerate(zip(lower, upper), start=1):
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(f"{who}: interval {level!r} step {step}: bounds {lo!r}..{hi!r} are not finite and ordered")
        out[f"{pct:g}"] = {"lower": lower, "upper": upper}
    return out


def get_predictions(*, coin: str | None = None, as_of: Any = None, url: str | None = None) -> list[dict]:
    """Return stored predictions, optionally for one coin and/or one ``as_of`` day, in key order."""
    stmt = select(Prediction.__table__)
    if coin is not None:
        stmt = stmt.where(Prediction.coin == coin)
    if as_of is not None:
        stmt = stmt.where(Prediction.as_of == _to_date(as_of))
    stmt = stmt.order_by(*Prediction.__table__.primary_key.columns)
    with get_engine(url).connect() as conn:
        return _as_dicts(conn.execute(stmt))


def store_trade_request(
    *,
    coin: str,
    as_of: Any,
    model: str,
    version: int,
    horizon: int,
    side: str,
    quantity: float,
    price: float,
    expected_return: float,
    broker: str,
    status: str,
    idempotency_key: str,
    response: dict[str, Any] | None = None,
    url: str | None = None,
) -> UpsertResult:
    """Store a trade request, or update its status/response when the same prediction key exists.

    ``idempotency_key`` is unique: reusing it for a different prediction key raises
    :class:`sqlalchemy.exc.IntegrityError`.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"store_trade_request: side must be 'buy' or 'sell', got {side!r}")
    now = utcnow()
    row = {
        "coin": coin,
        "as_of": _to_date(as_of),
        "model": model,
        "version": int(version),
        "horizon": int(horizon),
        "side": side,
        "quantity": float(quantity),
        "price": float(price),
        "expected_return": float(expected_return),
        "broker": broker,
        "status": status,
        "idempotency_key": idempotency_key,
        "response": response,
        "created_at": now,
        "updated_at": now,
    }
    update = ["side", "quantity", "price", "expected_return", "broker", "status", "response", "updated_at"]
    with session_scope(url) as session:
        return upsert(session, TradeRequest, [row], update_columns=update)


def get_trade_requests(
    *, coin: str | None = None, as_of: Any = None, status: str | None = None, url: str | None = None
) -> list[dict]:
    """Return stored trade requests, optionally filtered by coin, ``as_of`` day and status."""
    stmt = select(TradeRequest.__table__)
    if coin is not None:
        stmt = stmt.where(TradeRequest.coin == coin)
    if as_of is not None:
        stmt = stmt.where(TradeRequest.as_of == _to_date(as_of))
    if status is not None:
        stmt = stmt.where(TradeRequest.status == status)
    stmt = stmt.order_by(*TradeRequest.__table__.primary_key.columns)
    with get_engine(url).connect() as conn:
        return _as_dicts(conn.execute(stmt))


def count_rows(table_name: str, url: str | None = None) -> int:
    """Return the number of rows in one of the storage tables."""
    table = Base.metadata.tables.get(table_name)
    if table is None:
        raise ValueError(f"unknown table {table_name!r}; known: {sorted(Base.metadata.tables)}")
    with get_engine(url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


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
    stmt = select(Price.coin).where(Price.date == _to_date(day)).order_by(Price.coin)
    with get_engine(url).connect() as conn:
        return list(conn.execute(stmt).scalars())


def load_prices(coin: str, *, as_of: Any = None, url: str | None = None) -> pd.DataFrame:
    """One coin's stored bars up to ``as_of``, oldest first, in the loader's ``get_df`` columns
    (``Date, Open, High, Low, Close, Volume, Market Cap``)."""
    stmt = select(
        Price.date, Price.open, Price.high, Price.low, Price.close, Price.volume, Price.market_cap
    ).where(Price.coin == coin)
    if as_of is not None:
        stmt = stmt.where(Price.date <= _to_date(as_of))
    stmt = stmt.order_by(Price.date)
    with get_engine(url).connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame(
        rows, columns=["Date", "Open", "High", "Low", "Close", "Volume", "Market Cap"]
    )
    frame["Date"] = pd.to_datetime(frame["Date"])
    for col in ("Open", "High", "Low", "Close", "Volume", "Market Cap"):
        frame[col] = frame[col].astype("float64")
    return frame
