"""ORM models of the project's own database (prices, quarantine, models, predictions, trades).

Natural keys are primary keys wherever a row has one, so every write can be an idempotent upsert.
All constraints are named through :data:`NAMING_CONVENTION`, which keeps migrations portable
between SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every storage model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[float]: JSON, dt.datetime: DateTime(timezone=True)}


class Price(Base):
    """One daily OHLCV bar of one coin."""

    __tablename__ = "prices"

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float)
    market_cap: Mapped[float | None] = mapped_column(Float)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source: Mapped[str] = mapped_column(String(200))
    ingested_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class QuarantinedRow(Base):
    """One input row rejected by validation (severity ``error``), stored once per rule."""

    __tablename__ = "quarantined_rows"
    __table_args__ = (UniqueConstraint("coin", "origin", "line", "rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(String(96))
    date: Mapped[dt.date | None] = mapped_column(Date)
    origin: Mapped[str] = mapped_column(String(500))
    line: Mapped[int] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None]
    source: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One trained model of one coin; versions count up per (coin, model)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("coin", "model", "train_end", "fingerprint"),)

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    train_start: Mapped[dt.date | None] = mapped_column(Date)
    train_end: Mapped[dt.date] = mapped_column(Date)
    n_obs: Mapped[int | None] = mapped_column(Integer)
    trained_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    params: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]
    artifact_path: Mapped[str | None] = mapped_column(String(1000))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The point-in-time evaluation made at training (crypto_ml.evaluation.promotion), None for a
    # version trained before evaluations existed; and whether it may trade: "promoted", "rejected"
    # (never promoted) or "demoted", with the reason and when it last changed (audit:
    # model_promotions).
    evaluation: Mapped[dict[str, Any] | None]
    promotion: Mapped[str | None] = mapped_column(String(16))
    promotion_reason: Mapped[str | None] = mapped_column(Text)
    promotion_changed_at: Mapped[dt.datetime | None]


class ModelPromotion(Base):
    """The audit trail of promotion: one row per change of a model version's promotion status,
    automatic (at training, ``actor`` "crypto_ml_train") or by hand (``manual``, who and why)."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(String(96))
    model: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    before: Mapped[str | None] = mapped_column(String(16))
    after: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class Prediction(Base):
    """One forecast path of one model version, made on ``as_of`` for ``horizon`` days."""

    __tablename__ = "predictions"

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    horizon: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    values: Mapped[list[float]]
    last_close: Mapped[float] = mapped_column(Float)
    expected_return: Mapped[float] = mapped_column(Float)
    # Prediction intervals of the path: {"80": {"lower": [...], "upper": [...]}, "95": {...}},
    # one bound per horizon step; None for rows stored before intervals existed.
    intervals: Mapped[dict[str, Any] | None]
    # How the intervals were made: "conformal" (walk-forward residuals of the training window)
    # or "native" (the model's own); None when there are none.
    interval_method: Mapped[str | None] = mapped_column(String(32))
    # Why the path has no intervals (e.g. too short a calibration sample); None when it has them.
    interval_reason: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    # The trade decision, made once by the pipeline's `decide` and recorded here: "trade" (its
    # order is the write-ahead row in trade_requests) or "store"; None until decided.
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None]


class ModelArtifact(Base):
    """One file of one trained model, in the project database (the ``database`` model store):
    written in one transaction with the other files of its training run, before the model
    version that points at it (keyed by the training's fingerprint), so no reader sees half."""

    __tablename__ = "model_artifacts"

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class TradeRequest(Base):
    """One order sent (or to be sent) to a broker for one prediction."""

    __tablename__ = "trade_requests"

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    horizon: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    expected_return: Mapped[float] = mapped_column(Float)
    broker: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    response: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)


class PaperOrder(Base):
    """One order of the paper broker, keyed by its idempotency key (placed at most once)."""

    __tablename__ = "paper_orders"

    idempotency_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    coin: Mapped[str] = mapped_column(String(96))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    as_of: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class PaperFill(Base):
    """The (single, complete) fill of one paper order."""

    __tablename__ = "paper_fills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(
        String(128), ForeignKey("paper_orders.idempotency_key"), unique=True
    )
    quantity: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    filled_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)


class PaperPosition(Base):
    """The paper broker's position in one coin (negative = short) at its average entry price."""

    __tablename__ = "paper_positions"

    coin: Mapped[str] = mapped_column(String(96), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float)
    avg_price: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, onupdate=utcnow)
