"""Trading: rules that turn predictions into orders, and the brokers that place them.

The pipeline calls :func:`handle_prediction` (and :func:`decide_for` in its branch task); brokers come
from :func:`broker_from_config` (paper ledger by default, HTTP dry-run unless explicitly live).
"""

from __future__ import annotations

from crypto_ml.trading.brokers import (
    Broker,
    BrokerError,
    HTTPBroker,
    IdempotencyConflict,
    LiveTradingNotEnabled,
    OrderRequest,
    OrderResult,
    PaperBroker,
    broker_from_config,
)
from crypto_ml.trading.rules import Decision, TradingRules, decide
from crypto_ml.trading.service import decide_for, handle_prediction, idempotency_key

__all__ = [
    "Broker",
    "BrokerError",
    "Decision",
    "HTTPBroker",
    "IdempotencyConflict",
    "LiveTradingNotEnabled",
    "OrderRequest",
    "OrderResult",
    "PaperBroker",
    "TradingRules",
    "broker_from_config",
    "decide",
    "decide_for",
    "handle_prediction",
    "idempotency_key",
]
