"""The ledger: decisions on predictions, trade requests, and the paper broker's orders, fills and
positions.

Trade requests and decisions are written by :mod:`crypto_ml.trading.service` (one writer each);
the paper tables by :class:`crypto_ml.trading.brokers.PaperBroker`, which runs the ``paper_*``
functions that take a ``session`` inside one transaction of its own
(:func:`crypto_ml.storage.db.session_scope`), so an order, its fill and the position move together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crypto_ml.storage.db import UpsertResult, get_engine, session_scope, upsert
from crypto_ml.storage.models import PaperFill, PaperOrder, PaperPosition, Prediction, TradeRequest, utcnow
from crypto_ml.storage.predictions import key_clause
from crypto_ml.utils.dates import as_date

# ------------------------------------------------------------------------------ trade requests


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
        "as_of": as_date(as_of, what="as_of"),
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
    update_columns = [
        "side",
        "quantity",
        "price",
        "expected_return",
        "broker",
        "status",
        "response",
        "updated_at",
    ]
    with session_scope(url) as session:
        return upsert(session, TradeRequest, [row], update_columns=update_columns)


def get_trade_requests(
    *, coin: str | None = None, as_of: Any = None, status: str | None = None, url: str | None = None
) -> list[dict]:
    """Return stored trade requests, optionally filtered by coin, ``as_of`` day and status."""
    stmt = select(TradeRequest.__table__)
    if coin is not None:
        stmt = stmt.where(TradeRequest.coin == coin)
    if as_of is not None:
        stmt = stmt.where(TradeRequest.as_of == as_date(as_of, what="as_of"))
    if status is not None:
        stmt = stmt.where(TradeRequest.status == status)
    stmt = stmt.order_by(*TradeRequest.__table__.primary_key.columns)
    with get_engine(url).connect() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]


# ----------------------------------------------------------------------------------- decisions


def get_decision(
    key: Sequence[Any], idempotency_key: str, *, url: str | None = None
) -> dict[str, Any] | None:
    """The decision recorded on the prediction ``key`` = ``(coin, as_of, model, version, horizon)``:
    ``{decision, reason, decided_at, trade}`` with ``trade`` the trade-request row stored under
    ``idempotency_key`` (or None); None when nobody decided yet (or the prediction is not stored)."""
    with get_engine(url).connect() as conn:
        row = conn.execute(
            select(Prediction.decision, Prediction.decision_reason, Prediction.decided_at).where(
                key_clause(key)
            )
        ).first()
        if row is None or row.decision is None:
            return None
        trade = conn.execute(
            select(TradeRequest.__table__).where(TradeRequest.idempotency_key == idempotency_key)
        ).first()
    return {
        "decision": row.decision,
        "reason": row.decision_reason,
        "decided_at": row.decided_at,
        "trade": dict(trade._mapping) if trade is not None else None,
    }


def record_decision(
    key: Sequence[Any],
    *,
    decision: str,
    reason: str,
    trade: dict[str, Any] | None = None,
    url: str | None = None,
) -> bool:
    """Record ``decision`` on the prediction ``key`` unless one is recorded, in one transaction with
    its write-ahead trade request ``trade`` (the :func:`store_trade_request` fields without
    ``status``/``response``: stored as ``"pending"``, or left as it is when its key exists).

    Compare-and-set: the first decision wins; returns whether this call's decision was recorded.
    The trade request is written only by the call whose decision was recorded (the set comes
    first), so a decider that lost the race leaves no request behind.
    """
    now = utcnow()
    with session_scope(url) as session:
        result = session.execute(
            update(Prediction)
            .where(key_clause(key) & Prediction.decision.is_(None))
            .values(decision=decision, decision_reason=reason, decided_at=now)
        )
        if result.rowcount != 1:
            return False
        if trade is not None:
            row = {
                **trade,
                "as_of": as_date(trade["as_of"], what="as_of"),
                "status": "pending",
                "response": None,
                "created_at": now,
                "updated_at": now,
            }
            # DO NOTHING without a conflict target (every unique index is an arbiter): a request
            # of this key left by an earlier decision that was cleared stays as it is.
            session.execute(_insert(session)(TradeRequest).values(row).on_conflict_do_nothing())
        return True


# ---------------------------------------------------------------------------------- paper ledger


def _insert(session: Session):
    return postgresql.insert if session.connection().dialect.name == "postgresql" else sqlite.insert


def claim_paper_order(
    session: Session,
    *,
    idempotency_key: str,
    coin: str,
    side: str,
    quantity: float,
    price: float,
    as_of: dt.date | None,
) -> bool:
    """Insert the order as ``"pending"`` unless its key exists (``ON CONFLICT DO NOTHING``); True
    when this transaction inserted it (and so is the one that settles it)."""
    stmt = (
        _insert(session)(PaperOrder)
        .values(
            idempotency_key=idempotency_key,
            coin=coin,
            side=side,
            quantity=float(quantity),
            price=float(price),
            as_of=as_of,
            status="pending",
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(PaperOrder.idempotency_key)
    )
    return session.execute(stmt).first() is not None


def lock_paper_position(session: Session, coin: str) -> tuple[float, float]:
    """``(quantity, avg_price)`` of ``coin``, creating a zero row, locked until the commit."""
    session.execute(
        _insert(session)(PaperPosition)
        .values(coin=coin, quantity=0.0, avg_price=0.0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["coin"])
    )
    # SQLite: the order insert already holds the database's write lock.
    row = session.execute(
        select(PaperPosition.quantity, PaperPosition.avg_price)
        .where(PaperPosition.coin == coin)
        .with_for_update()
    ).one()
    return float(row.quantity), float(row.avg_price)


def reject_paper_order(session: Session, idempotency_key: str, reason: str) -> None:
    """Mark the claimed order rejected with ``reason``."""
    session.execute(
        update(PaperOrder)
        .where(PaperOrder.idempotency_key == idempotency_key)
        .values(status="rejected", reason=reason)
    )


def fill_paper_order(
    session: Session,
    *,
    idempotency_key: str,
    coin: str,
    quantity: float,
    price: float,
    position: float,
    avg_price: float,
) -> None:
    """Mark the claimed order filled, record its fill and set the coin's position to ``position``
    at ``avg_price`` (the row :func:`lock_paper_position` locked)."""
    now = utcnow()
    session.execute(
        update(PaperOrder).where(PaperOrder.idempotency_key == idempotency_key).values(status="filled")
    )
    session.execute(
        PaperFill.__table__.insert().values(
            idempotency_key=idempotency_key, quantity=float(quantity), price=float(price), filled_at=now
        )
    )
    session.execute(
        update(PaperPosition)
        .where(PaperPosition.coin == coin)
        .values(quantity=position, avg_price=avg_price, updated_at=now)
    )


def paper_order(session: Session, idempotency_key: str) -> dict[str, Any]:
    """The stored order of ``idempotency_key`` with its fill: the order row plus ``filled_qty``
    (0 when not filled) and ``fill_price`` (None)."""
    stored = session.execute(
        select(PaperOrder.__table__).where(PaperOrder.idempotency_key == idempotency_key)
    ).one()
    fill = session.execute(
        select(PaperFill.quantity, PaperFill.price).where(PaperFill.idempotency_key == idempotency_key)
    ).first()
    filled_qty, fill_price = (float(fill.quantity), float(fill.price)) if fill else (0.0, None)
    return {**stored._mapping, "filled_qty": filled_qty, "fill_price": fill_price}


def paper_position(coin: str, *, url: str | None = None) -> float:
    """Quantity of ``coin`` held on paper (0 when none)."""
    with get_engine(url).connect() as conn:
        qty = conn.execute(select(PaperPosition.quantity).where(PaperPosition.coin == coin)).scalar()
    return float(qty or 0.0)


def paper_positions(*, url: str | None = None) -> dict[str, float]:
    """``{coin: quantity}`` of every non-zero paper position."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(select(PaperPosition.coin, PaperPosition.quantity).order_by(PaperPosition.coin))
        return {coin: float(qty) for coin, qty in rows if qty}


def paper_total_notional(*, url: str | None = None) -> float:
    """Gross notional of the paper positions (sum of ``|quantity| * avg_price``)."""
    with get_engine(url).connect() as conn:
        value = conn.execute(
            select(func.sum(func.abs(PaperPosition.quantity) * PaperPosition.avg_price))
        ).scalar()
    return float(value or 0.0)
