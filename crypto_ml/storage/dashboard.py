"""The read-only queries of the web view (:mod:`crypto_ml.web`): recent predictions with their
trade, recent trade requests, one coin's window for the plot, for the day's summary the newest
day, its counts, the paper positions and the stored model evaluations, and the model versions'
promotion (champion / challenger) with its audit trail.

Never migrates or writes, and never creates a database: a SQLite file that is not there, or a
database without the tables, is :class:`NoDatabase` ("nothing stored yet").
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy import Engine, func, inspect, select, tuple_
from sqlalchemy.engine import make_url

from crypto_ml.engine.prediction import PredictionRecord
from crypto_ml.storage.db import database_url, get_engine
from crypto_ml.storage.models import (
    ModelPromotion,
    ModelVersion,
    PaperPosition,
    Prediction,
    Price,
    TradeRequest,
)

#: Trade-request columns served; ``response`` (the broker's raw answer) is left out on purpose.
TRADE_COLUMNS = [
    "coin", "as_of", "model", "version", "horizon", "side", "quantity", "price", "expected_return",
    "broker", "status", "idempotency_key", "created_at", "updated_at",
]  # fmt: skip
_KEY = ("coin", "as_of", "model", "version", "horizon")


class NoDatabase(Exception):
    """The project database does not exist yet or has no schema: nothing has been stored."""


def _engine(url: str | None, *tables: str) -> Engine:
    """The engine of the project database with ``tables``; :class:`NoDatabase` for a SQLite file
    that isn't there (connecting would create an empty file, and a read-only view should not) or a
    schema without them."""
    resolved = database_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        if not parsed.database.startswith("file:") and not os.path.exists(parsed.database):
            raise NoDatabase
    engine = get_engine(resolved)
    if not set(tables) <= set(inspect(engine).get_table_names()):
        raise NoDatabase
    return engine


def known_coins(url: str | None = None) -> list[str]:
    """Coins with at least one prediction or trade request, sorted."""
    engine = _engine(url, "predictions", "trade_requests")
    stmt = select(Prediction.coin).union(select(TradeRequest.coin))
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def recent_predictions(
    *, coin: str | None = None, limit: int, url: str | None = None
) -> list[dict[str, Any]]:
    """Newest prediction rows first (by ``as_of``, then creation time), each with its ``trade``
    (the trade request's :data:`TRADE_COLUMNS`) or None."""
    engine = _engine(url, "predictions", "trade_requests")
    stmt = select(Prediction.__table__)
    if coin is not None:
        stmt = stmt.where(Prediction.coin == coin)
    stmt = stmt.order_by(
        Prediction.as_of.desc(),
        Prediction.created_at.desc(),
        Prediction.coin,
        Prediction.model,
        Prediction.version.desc(),
        Prediction.horizon,
    ).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        trades: dict[tuple, dict[str, Any]] = {}
        if rows:
            key_cols = [TradeRequest.__table__.c[k] for k in _KEY]
            keys = [tuple(r[k] for k in _KEY) for r in rows]
            for t in conn.execute(select(TradeRequest.__table__).where(tuple_(*key_cols).in_(keys))):
                t = dict(t._mapping)
                trades[tuple(t[k] for k in _KEY)] = {k: t[k] for k in TRADE_COLUMNS}
    for r in rows:
        r["trade"] = trades.get(tuple(r[k] for k in _KEY))
    return rows


def recent_trades(*, coin: str | None = None, limit: int, url: str | None = None) -> list[dict[str, Any]]:
    """Newest trade requests first (by ``as_of``, then last update); no broker responses."""
    engine = _engine(url, "trade_requests")
    table = TradeRequest.__table__
    stmt = select(*(table.c[k] for k in TRADE_COLUMNS))
    if coin is not None:
        stmt = stmt.where(table.c.coin == coin)
    stmt = stmt.order_by(table.c.as_of.desc(), table.c.updated_at.desc(), table.c.coin).limit(limit)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


#: Model-version columns served with the promotion (no params, artifact or fingerprint).
VERSION_COLUMNS = [
    "coin", "model", "version", "train_start", "train_end", "trained_at", "promotion", "promotion_reason",
    "promotion_changed_at",
]  # fmt: skip


def _summary(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline numbers of a version's evaluation (None when it has none)."""
    if not evaluation:
        return None
    strategy = evaluation.get("strategy") or {}
    bands = evaluation.get("intervals") or {}
    return {
        "window_start": evaluation.get("window_start"),
        "as_of": evaluation.get("as_of"),
        "mase_vs_naive": evaluation.get("mase_vs_naive"),
        "coverage": {k: v.get("coverage") for k, v in bands.items()},
        "median_width_pct": {k: v.get("median_width_pct") for k, v in bands.items()},
        **{k: strategy.get(k) for k in ("total_return", "max_drawdown", "hit_rate", "trades")},
        "error": evaluation.get("error"),
    }


def model_promotions(
    *, coin: str | None = None, limit: int = 50, url: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``{"versions": [...], "changes": [...]}``: the model versions, newest training first, each
    with :data:`VERSION_COLUMNS` and ``evaluation`` (its headline numbers, or None), and the
    newest promotion changes (the audit trail: before, after, reason, actor, manual, at)."""
    engine = _engine(url, "model_versions", "model_promotions")
    versions = select(*(ModelVersion.__table__.c[k] for k in VERSION_COLUMNS), ModelVersion.evaluation)
    changes = select(ModelPromotion.__table__)
    if coin is not None:
        versions = versions.where(ModelVersion.coin == coin)
        changes = changes.where(ModelPromotion.coin == coin)
    versions = versions.order_by(
        ModelVersion.train_end.desc(), ModelVersion.coin, ModelVersion.model, ModelVersion.version.desc()
    ).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(versions)]
        newest = changes.order_by(ModelPromotion.id.desc()).limit(limit)
        trail = [dict(r._mapping) for r in conn.execute(newest)]
    for r in rows:
        r["evaluation"] = _summary(r["evaluation"])
    return {"versions": rows, "changes": trail}


def coin_window(
    coin: str, *, days: int = 180, max_paths: int = 10, url: str | None = None
) -> tuple[list[tuple[dt.date, float]], list[PredictionRecord], list[dict[str, Any]]]:
    """The coin's last ``days`` closes, its newest ``max_paths`` predictions (oldest first) and its
    trade requests in that window.

    Without prices the window is that of the predictions. Raises :class:`NoDatabase` when there is no
    schema, :class:`LookupError` when nothing at all is stored for ``coin``.
    """
    engine = _engine(url, "prices", "predictions", "trade_requests")
    with engine.connect() as conn:
        closes = [
            (d, c)
            for d, c in conn.execute(
                select(Price.date, Price.close)
                .where(Price.coin == coin)
                .order_by(Price.date.desc())
                .limit(days)
            )
        ][::-1]
        start = closes[0][0] if closes else None
        p_stmt = select(Prediction.__table__).where(Prediction.coin == coin)
        t_table = TradeRequest.__table__
        t_stmt = select(*(t_table.c[k] for k in TRADE_COLUMNS)).where(t_table.c.coin == coin)
        if start is not None:
            p_stmt = p_stmt.where(Prediction.as_of >= start)
            t_stmt = t_stmt.where(t_table.c.as_of >= start)
        p_stmt = p_stmt.order_by(Prediction.as_of.desc(), Prediction.created_at.desc()).limit(max_paths)
        predictions = [PredictionRecord.from_json(r._mapping) for r in conn.execute(p_stmt)][::-1]
        if start is None and predictions:
            t_stmt = t_stmt.where(t_table.c.as_of >= predictions[0].as_of)
        trades = [dict(r._mapping) for r in conn.execute(t_stmt.order_by(t_table.c.as_of))]
        if not closes and not predictions and not trades:
            # Maybe the coin only has trades/predictions outside the window: it still exists.
            exists = conn.execute(
                select(Prediction.coin)
                .where(Prediction.coin == coin)
                .union(select(TradeRequest.coin).where(TradeRequest.coin == coin))
            ).first()
            if exists is None:
                raise LookupError(coin)
    return closes, predictions, trades


def latest_day(url: str | None = None) -> dt.date | None:
    """The newest ``as_of`` with a prediction (the day the summary is of), None when there is none."""
    engine = _engine(url, "predictions")
    with engine.connect() as conn:
        return conn.execute(select(func.max(Prediction.as_of))).scalar()


def day_counts(day: dt.date, url: str | None = None) -> dict[str, Any]:
    """What was written for ``day``: ``coins`` (with a prediction), ``predictions`` per model,
    ``decisions`` per decision (``trade``, ``store``, ``None`` for undecided), ``trades`` per side
    and ``statuses`` per trade-request status."""
    engine = _engine(url, "predictions", "trade_requests")
    p, t = Prediction.__table__.c, TradeRequest.__table__.c
    with engine.connect() as conn:
        coins = conn.execute(select(func.count(func.distinct(p.coin))).where(p.as_of == day)).scalar()
        per_model = conn.execute(select(p.model, func.count()).where(p.as_of == day).group_by(p.model))
        decisions = conn.execute(select(p.decision, func.count()).where(p.as_of == day).group_by(p.decision))
        sides = conn.execute(select(t.side, func.count()).where(t.as_of == day).group_by(t.side))
        statuses = conn.execute(select(t.status, func.count()).where(t.as_of == day).group_by(t.status))
        return {
            "coins": int(coins or 0),
            "predictions": dict(sorted(per_model.all())),
            "decisions": dict(decisions.all()),
            "trades": dict(sorted(sides.all())),
            "statuses": dict(sorted(statuses.all())),
        }


def paper_positions(url: str | None = None) -> list[dict[str, Any]]:
    """The paper broker's open positions (non-zero quantity), largest cost first: ``coin,
    quantity, avg_price, updated_at``; empty when the ledger has no table yet."""
    try:
        engine = _engine(url, "paper_positions")
    except NoDatabase:
        return []
    table = PaperPosition.__table__
    stmt = (
        select(table)
        .where(table.c.quantity != 0)
        .order_by(func.abs(table.c.quantity * table.c.avg_price).desc(), table.c.coin)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def has_paper_ledger(url: str | None = None) -> bool:
    """Whether the paper broker's tables exist (a database migrated before them has none)."""
    try:
        _engine(url, "paper_orders", "paper_fills", "paper_positions")
    except NoDatabase:
        return False
    return True


def model_evaluations(url: str | None = None) -> list[dict[str, Any]]:
    """The newest evaluated version of every (coin, model): model versions whose ``metrics`` are
    not empty (a backtest given a model store records its folds' scores there), newest training
    window first; ``coin, model, version, train_end, trained_at, metrics``; empty without the table."""
    try:
        engine = _engine(url, "model_versions")
    except NoDatabase:
        return []
    m = ModelVersion.__table__.c
    stmt = select(m.coin, m.model, m.version, m.train_end, m.trained_at, m.metrics).order_by(
        m.coin, m.model, m.train_end.desc(), m.version.desc()
    )
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            if row.metrics and (row.coin, row.model) not in newest:
                newest[(row.coin, row.model)] = dict(row._mapping)
    return list(newest.values())
