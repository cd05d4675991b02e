"""Provider metadata, so ``airflow providers list`` shows crypto-ml (entry point
``apache_airflow_provider``)."""

from __future__ import annotations

from crypto_ml import __version__


def get_provider_info() -> dict:
    return {
        "package-name": "crypto-ml",
        "name": "Crypto-ML",
        "description": "Operators, sensors, triggers and hooks for the Crypto-ML prediction pipeline.",
        "versions": [__version__],
    }
