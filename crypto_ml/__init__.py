"""Crypto-ML: horizontally scalable machine learning on daily crypto market data."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``crypto_ml.app``: the engine's Celery app (:mod:`crypto_ml.engine.app`), built on first
    access only, so ``celery -A crypto_ml worker|flower|inspect`` finds it and ``import crypto_ml``
    stays free of Celery. ``crypto_ml.CryptoLoader`` and ``crypto_ml.CryptoManager``: the talk's
    two classes, imported on first access."""
    if name == "app":
        from crypto_ml.engine.app import app

        return app
    if name == "CryptoLoader":
        from crypto_ml.data.loader import CryptoLoader

        return CryptoLoader
    if name == "CryptoManager":
        from crypto_ml.forecasting.manager import CryptoManager

        return CryptoManager
    raise AttributeError(f"module 'crypto_ml' has no attribute {name!r}")
