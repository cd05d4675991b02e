"""The project's own database: prices, quarantined rows, model versions, predictions, trade requests.

SQLite file by default, PostgreSQL by URL (``CRYPTO_ML_DATABASE_URL``); schema managed by Alembic
(:func:`migrate`); every write is an idempotent upsert on natural keys. All SQL of this database
lives in this package, one module per concern:

- :mod:`~crypto_ml.storage.db`: engines, sessions, migrations, the dialect-aware upsert;
- :mod:`~crypto_ml.storage.prices`: daily bars and quarantined rows;
- :mod:`~crypto_ml.storage.model_versions`: model versions and database-stored artifacts;
- :mod:`~crypto_ml.storage.predictions`: predictions (:class:`crypto_ml.engine.prediction.PredictionRecord`);
- :mod:`~crypto_ml.storage.ledger`: decisions, trade requests, the paper broker's ledger;
- :mod:`~crypto_ml.storage.dashboard`: the read-only queries of the web view.
"""

from __future__ import annotations

from crypto_ml.storage.db import (
    UpsertResult,
    count_rows,
    current_revision,
    database_url,
    dispose_engine,
    get_engine,
    migrate,
    session_scope,
    upsert,
)
from crypto_ml.storage.ledger import get_trade_requests, store_trade_request
from crypto_ml.storage.model_versions import get_model_version, latest_model_version, record_model_version
from crypto_ml.storage.models import (
    Base,
    ModelArtifact,
    ModelPromotion,
    ModelVersion,
    PaperFill,
    PaperOrder,
    PaperPosition,
    Prediction,
    Price,
    QuarantinedRow,
    TradeRequest,
)
from crypto_ml.storage.predictions import get_predictions, save_prediction, store_prediction
from crypto_ml.storage.prices import (
    coins_on,
    load_closes,
    load_prices,
    price_range,
    store_prices,
    store_quarantine,
)

__all__ = [
    "Base",
    "coins_on",
    "ModelArtifact",
    "ModelPromotion",
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
    "get_model_version",
    "get_predictions",
    "get_trade_requests",
    "latest_model_version",
    "load_closes",
    "load_prices",
    "price_range",
    "record_model_version",
    "save_prediction",
    "session_scope",
    "store_prediction",
    "store_prices",
    "store_quarantine",
    "store_trade_request",
    "upsert",
]
