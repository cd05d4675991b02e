"""Crypto-ML: horizontally scalable machine learning on daily crypto market data."""

from __future__ import annotations

__version__ = "0.1.0"
