"""Trading: rules that turn predictions into orders, and the brokers that place them.

The pipeline's ``decide`` task calls :func:`record_decision` (stores the prediction once, decides
once, records the write-ahead order) and ``issue_trade_request`` :func:`place_recorded_order`
(sends exactly that order); :func:`handle_prediction` chains both outside Airflow. Brokers come
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
from crypto_ml.trading.service import (
    DecisionError,
    handle_prediction,
    idempotency_key,
    place_recorded_order,
    record_decision,
    recorded_decision,
)

__all__ = [
    "Broker",
    "BrokerError",
    "Decision",
    "DecisionError",
    "HTTPBroker",
    "IdempotencyConflict",
    "LiveTradingNotEnabled",
    "OrderRequest",
    "OrderResult",
    "PaperBroker",
    "TradingRules",
    "broker_from_config",
    "decide",
    "handle_prediction",
    "idempotency_key",
    "place_recorded_order",
    "record_decision",
    "recorded_decision",
]
