"""The project's own database: prices, quarantined rows, model versions, predictions, trade requests.

SQLite file by default, PostgreSQL by URL (``CRYPTO_ML_DATABASE_URL``); schema managed by Alembic
(:func:`migrate`); every write is an idempotent upsert on natural keys.
"""

from __future__ import annotations

from crypto_ml.storage.db import (
    UpsertResult,
    current_revision,
    database_url,
    dispose_engine,
    get_engine,
    migrate,
    session_scope,
    upsert,
)
from crypto_ml.storage.models import (
    Base,
    ModelArtifact,
    ModelVersion,
    PaperFill,
    PaperOrder,
    PaperPosition,
    Prediction,
    Price,
    QuarantinedRow,
    TradeRequest,
)
from crypto_ml.storage.repository import (
    coins_on,
    count_rows,
    get_predictions,
    get_trade_requests,
    latest_model_version,
    load_prices,
    price_range,
    record_model_version,
    store_prediction,
    store_prices,
    store_quarantine,
    store_trade_request,
)

__all__ = [
    "coins_on",
    "Base",
    "ModelArtifact",
    "ModelVersion",
    "PaperFill",
    "PaperOrder",
    "PaperPosition",
    "Prediction",
    "Price",
    "QuarantinedRow",
    "TradeRequest",
    "UpsertResult",
    "count_rows",
    "current_revision",
    "database_url",
    "dispose_engine",
    "get_engine",
    "migrate",
    "get_predictions",
    "get_trade_requests",
    "latest_model_version",
    "load_prices",
    "price_range",
    "record_model_version",
    "session_scope",
    "store_prediction",
    "store_prices",
    "store_quarantine",
    "store_trade_request",
    "upsert",
]
