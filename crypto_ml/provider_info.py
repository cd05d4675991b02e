"""Provider metadata, so ``airflow providers list`` shows crypto-ml and the UI offers its
Connection types (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from crypto_ml import __version__


def get_provider_info() -> dict:
    return {
        "package-name": "crypto-ml",
        "name": "Crypto-ML",
        "description": "Operators, sensors, triggers and hooks for the Crypto-ML prediction pipeline.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Crypto-ML",
                "external-doc-url": "https://github.com/axsaucedo/crypto-ml",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {"integration-name": "Crypto-ML",
             "python-modules": ["crypto_ml.hooks.engine", "crypto_ml.hooks.database",
                                "crypto_ml.hooks.market"]},
        ],
        "operators": [
            {"integration-name": "Crypto-ML",
             "python-modules": ["crypto_ml.operators.transform", "crypto_ml.operators.engine",
                                "crypto_ml.operators.trading"]},
        ],
        "sensors": [
            {"integration-name": "Crypto-ML", "python-modules": ["crypto_ml.sensors.engine"]},
        ],
        "triggers": [
            {"integration-name": "Crypto-ML", "python-modules": ["crypto_ml.triggers.engine"]},
        ],
        "connection-types": [
            {"hook-class-name": "crypto_ml.hooks.engine.CryptoEngineHook",
             "connection-type": "crypto_ml_engine"},
            {"hook-class-name": "crypto_ml.hooks.market.CryptoMarketHook",
             "connection-type": "crypto_ml_market"},
        ],
    }
