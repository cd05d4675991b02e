"""Predictions: one row per forecast path, keyed by ``(coin, as_of, model, version, horizon)``.

The row is a stored :class:`crypto_ml.engine.prediction.PredictionRecord` plus who stored it (``run_id``,
``created_at``) and the decision taken on it (written by :mod:`crypto_ml.storage.ledger`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from crypto_ml.engine.prediction import PredictionRecord
from crypto_ml.storage.db import UpsertResult, get_engine, session_scope, upsert
from crypto_ml.storage.models import Prediction, utcnow
from crypto_ml.utils.dates import as_date


def key_clause(key: Sequence[Any]):
    """The SQL condition selecting the prediction row of ``key`` = ``(coin, as_of, model, version,
    horizon)``."""
    coin, as_of, model, version, horizon = key
    return (
        (Prediction.coin == coin)
        & (Prediction.as_of == as_date(as_of, what="as_of"))
        & (Prediction.model == model)
        & (Prediction.version == int(version))
        & (Prediction.horizon == int(horizon))
    )


def save_prediction(
    record: PredictionRecord, *, run_id: str | None = None, overwrite: bool = True, url: str | None = None
) -> UpsertResult:
    """Store ``record``; re-storing the same key updates it in place, or with ``overwrite=False``
    leaves the stored row untouched (the pipeline writes it once). A record without intervals
    keeps the intervals already stored (and then its ``interval_reason`` is stored only with a new row)."""
    row = {
        "coin": record.coin,
        "as_of": record.as_of,
        "model": record.model,
        "version": record.version,
        "horizon": record.horizon,
        "values": list(record.values),
        "last_close": record.last_close,
        "expected_return": record.expected_return,
        "run_id": run_id,
        "created_at": utcnow(),
        "interval_reason": record.interval_reason,
    }
    update_columns = ["values", "last_close", "expected_return", "run_id"]
    if record.intervals is not None:
        row.update(intervals=record.intervals, interval_method=record.interval_method)
        update_columns += ["intervals", "interval_method", "interval_reason"]
    with session_scope(url) as session:
        return upsert(session, Prediction, [row], update_columns=update_columns if overwrite else [])


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
    interval_reason: str | None = None,
    overwrite: bool = True,
) -> UpsertResult:
    """:func:`save_prediction` of the :class:`~crypto_ml.engine.prediction.PredictionRecord` made of these
    fields (``values`` is the path, day ``as_of + 1`` first; ``intervals`` its bounds per level,
    ``{"80": {"lower": [...], "upper": [...]}, ...}``)."""
    record = PredictionRecord(
        coin=coin,
        as_of=as_of,
        model=model,
        version=version,
        horizon=horizon,
        values=values,
        last_close=last_close,
        intervals=intervals,
        interval_method=interval_method,
        interval_reason=interval_reason,
    )
    return save_prediction(record, run_id=run_id, overwrite=overwrite, url=url)


def get_predictions(*, coin: str | None = None, as_of: Any = None, url: str | None = None) -> list[dict]:
    """Return stored predictions, optionally for one coin and/or one ``as_of`` day, in key order."""
    stmt = select(Prediction.__table__)
    if coin is not None:
        stmt = stmt.where(Prediction.coin == coin)
    if as_of is not None:
        stmt = stmt.where(Prediction.as_of == as_date(as_of, what="as_of"))
    stmt = stmt.order_by(*Prediction.__table__.primary_key.columns)
    with get_engine(url).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]
