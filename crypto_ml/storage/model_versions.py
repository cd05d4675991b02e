"""Model versions (metadata of every trained model) and, for the ``database`` model store, the
artifact files themselves. :class:`crypto_ml.model_store.ModelStore` is the only caller that
writes them; the engine reads versions through it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crypto_ml.dates import as_date
from crypto_ml.storage.db import get_engine, session_scope, upsert
from crypto_ml.storage.models import ModelArtifact, ModelVersion, utcnow


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
    train_end = as_date(train_end, what="train_end")
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
                        train_start=as_date(train_start, what="train_start"),
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
        stmt = stmt.where(ModelVersion.train_end <= as_date(as_of, what="as_of"))
    with get_engine(url).connect() as conn:
        order = (ModelVersion.train_end.desc(), ModelVersion.version.desc())
        row = conn.execute(stmt.order_by(*order).limit(1)).first()
    return None if row is None else dict(row._mapping)


def get_model_version(coin: str, model: str, version: int, *, url: str | None = None) -> dict[str, Any] | None:
    """The row of version ``version`` of (coin, model), or ``None`` when it was never recorded."""
    stmt = select(ModelVersion.__table__).where(
        ModelVersion.coin == coin, ModelVersion.model == model, ModelVersion.version == int(version))
    with get_engine(url).connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else dict(row._mapping)


def store_artifact_files(
    coin: str, model: str, fingerprint: str, files: dict[str, tuple[bytes, str]], *, url: str | None = None
) -> None:
    """Store one training's files ``{name: (content, sha256)}`` in one transaction (all or none);
    files already stored under the same key are kept as they are."""
    now = utcnow()
    rows = [dict(coin=coin, model=model, fingerprint=fingerprint, name=name, content=data,
                 sha256=sha, size=len(data), created_at=now)
            for name, (data, sha) in files.items()]
    with session_scope(url) as session:
        upsert(session, ModelArtifact, rows, update_columns=[])


def load_artifact_files(coin: str, model: str, fingerprint: str, *, url: str | None = None) -> dict[str, tuple[bytes, str]]:
    """The stored files of one training, ``{name: (content, sha256)}`` (empty when none)."""
    t = ModelArtifact.__table__
    stmt = select(t.c.name, t.c.content, t.c.sha256).where(
        t.c.coin == coin, t.c.model == model, t.c.fingerprint == fingerprint)
    with get_engine(url).connect() as conn:
        return {name: (bytes(content), sha) for name, content, sha in conn.execute(stmt)}
