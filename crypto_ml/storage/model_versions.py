"""Model versions (metadata of every trained model) and, for the ``database`` model store, the
artifact files themselves. :class:`crypto_ml.storage.model_store.ModelStore` is the only caller that
writes them; the engine reads versions through it.

Promotion (champion / challenger, :mod:`crypto_ml.evaluation.promotion`): each version carries
its evaluation and a status, ``"promoted"`` (it may trade), ``"rejected"`` (never promoted) or
``"demoted"``; a coin has at most one promoted version (its champion), so promoting one demotes
the other. Every change of status writes one row of ``model_promotions`` (the audit trail: who,
when, why, by hand or not) in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crypto_ml.storage.db import get_engine, session_scope, upsert
from crypto_ml.storage.models import ModelArtifact, ModelPromotion, ModelVersion, utcnow
from crypto_ml.utils.dates import as_date

#: The promotion statuses of a model version (None: not evaluated).
PROMOTED, REJECTED, DEMOTED = "promoted", "rejected", "demoted"
STATUSES = (PROMOTED, REJECTED, DEMOTED)


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


def get_model_version(
    coin: str, model: str, version: int, *, url: str | None = None
) -> dict[str, Any] | None:
    """The row of version ``version`` of (coin, model), or ``None`` when it was never recorded."""
    stmt = select(ModelVersion.__table__).where(
        ModelVersion.coin == coin, ModelVersion.model == model, ModelVersion.version == int(version)
    )
    with get_engine(url).connect() as conn:
        row = conn.execute(stmt).first()
    return None if row is None else dict(row._mapping)


def store_artifact_files(
    coin: str, model: str, fingerprint: str, files: dict[str, tuple[bytes, str]], *, url: str | None = None
) -> None:
    """Store one training's files ``{name: (content, sha256)}`` in one transaction (all or none);
    files already stored under the same key are kept as they are."""
    now = utcnow()
    rows = [
        dict(
            coin=coin,
            model=model,
            fingerprint=fingerprint,
            name=name,
            content=data,
            sha256=sha,
            size=len(data),
            created_at=now,
        )
        for name, (data, sha) in files.items()
    ]
    with session_scope(url) as session:
        upsert(session, ModelArtifact, rows, update_columns=[])


def load_artifact_files(
    coin: str, model: str, fingerprint: str, *, url: str | None = None
) -> dict[str, tuple[bytes, str]]:
    """The stored files of one training, ``{name: (content, sha256)}`` (empty when none)."""
    t = ModelArtifact.__table__
    stmt = select(t.c.name, t.c.content, t.c.sha256).where(
        t.c.coin == coin, t.c.model == model, t.c.fingerprint == fingerprint
    )
    with get_engine(url).connect() as conn:
        return {name: (bytes(content), sha) for name, content, sha in conn.execute(stmt)}


def _row(version: ModelVersion) -> dict[str, Any]:
    return {c.name: getattr(version, c.key) for c in ModelVersion.__table__.columns}


def _change(session, row: ModelVersion, status: str, reason: str, actor: str, manual: bool) -> None:
    """Set ``row``'s status and write its audit row (within the caller's transaction)."""
    now = utcnow()
    session.add(
        ModelPromotion(
            coin=row.coin,
            model=row.model,
            version=row.version,
            before=row.promotion,
            after=status,
            reason=reason,
            actor=actor,
            manual=manual,
            at=now,
        )
    )
    row.promotion, row.promotion_reason, row.promotion_changed_at = status, reason, now


def _set(session, row: ModelVersion, status: str, reason: str, actor: str, manual: bool) -> None:
    """``_change``, and when ``row`` is promoted, demote the coin's former champion."""
    if status == PROMOTED:
        others = session.scalars(
            select(ModelVersion)
            .where(
                ModelVersion.coin == row.coin,
                ModelVersion.promotion == PROMOTED,
                ~((ModelVersion.model == row.model) & (ModelVersion.version == row.version)),
            )
            .with_for_update()
        )
        for other in others:
            _change(session, other, DEMOTED, f"replaced by {row.model} v{row.version}", actor, manual)
    _change(session, row, status, reason, actor, manual)


def _locked(session, coin: str, model: str, version: int) -> ModelVersion:
    row = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.coin == coin, ModelVersion.model == model, ModelVersion.version == int(version))
        .with_for_update()
    )
    if row is None:
        raise LookupError(f"no {model!r} model v{version} for {coin!r} in the model store")
    return row


def record_evaluation(
    coin: str,
    model: str,
    version: int,
    *,
    evaluation: dict[str, Any],
    status: str,
    reason: str,
    actor: str = "crypto_ml_train",
    url: str | None = None,
) -> dict[str, Any]:
    """Record the evaluation made at training with its verdict (``status`` promoted or rejected),
    once: a version already evaluated keeps its evaluation and status (a retried training, or a
    status set by hand since, changes nothing). Returns the version's row."""
    if status not in (PROMOTED, REJECTED):
        raise ValueError(f"the verdict of an evaluation is {PROMOTED!r} or {REJECTED!r}, got {status!r}")
    with session_scope(url) as session:
        row = _locked(session, coin, model, version)
        if row.evaluation is None:
            row.evaluation = evaluation
            _set(session, row, status, reason, actor, manual=False)
        session.flush()
        return _row(row)


def set_promotion(
    coin: str,
    model: str,
    version: int,
    status: str,
    *,
    reason: str,
    actor: str,
    manual: bool = True,
    url: str | None = None,
) -> dict[str, Any]:
    """Promote or demote a version by hand (``status`` "promoted" or "demoted"), audited with
    ``actor`` and ``reason`` (both required). Returns the version's row."""
    if status not in (PROMOTED, DEMOTED):
        raise ValueError(f"a version is set {PROMOTED!r} or {DEMOTED!r} by hand, got {status!r}")
    if not (reason or "").strip() or not (actor or "").strip():
        raise ValueError("a promotion change by hand needs who made it (actor) and why (reason)")
    with session_scope(url) as session:
        row = _locked(session, coin, model, version)
        if row.promotion != status:
            _set(session, row, status, reason.strip(), actor.strip(), manual)
        session.flush()
        return _row(row)


def champion(coin: str, *, url: str | None = None) -> dict[str, Any] | None:
    """The coin's promoted version (its champion), or None (then naive / no-trade is)."""
    stmt = select(ModelVersion.__table__).where(ModelVersion.coin == coin, ModelVersion.promotion == PROMOTED)
    with get_engine(url).connect() as conn:
        row = conn.execute(stmt.order_by(ModelVersion.promotion_changed_at.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


def list_model_versions(
    *, coin: str | None = None, model: str | None = None, url: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded version (without artifacts), by coin, model and version."""
    stmt = select(ModelVersion.__table__)
    if coin is not None:
        stmt = stmt.where(ModelVersion.coin == coin)
    if model is not None:
        stmt = stmt.where(ModelVersion.model == model)
    order = (ModelVersion.coin, ModelVersion.model, ModelVersion.version)
    with get_engine(url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(*order))]


def promotion_history(
    *, coin: str | None = None, model: str | None = None, url: str | None = None
) -> list[dict[str, Any]]:
    """The audit trail of promotion changes, oldest first."""
    stmt = select(ModelPromotion.__table__)
    if coin is not None:
        stmt = stmt.where(ModelPromotion.coin == coin)
    if model is not None:
        stmt = stmt.where(ModelPromotion.model == model)
    with get_engine(url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(ModelPromotion.id))]
