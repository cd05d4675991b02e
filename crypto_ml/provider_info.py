"""Provider metadata, so ``airflow providers list`` shows crypto-ml and the UI offers its
Connection types (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from crypto_ml import __version__


def _field(label: str, kind: str, description: str, **schema) -> dict:
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], **schema}}


#: The market setting's connection type, as the UI's connection form shows it (Airflow reads this
#: metadata without importing the hook). See :mod:`crypto_ml.market`.
MARKET_CONNECTION = {
    "hook-class-name": "crypto_ml.hooks.market.CryptoMarketHook",
    "hook-name": "Crypto-ML market",
    "connection-type": "crypto_ml_market",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "login", "password"],
        "relabeling": {"host": "Market (replay, csv, or a ccxt exchange id)"},
        "placeholders": {"host": "binance"},
    },
    "conn-fields": {
        "symbols": _field("Symbols", "string", "Exchange: the universe as symbols, e.g. BTC/USDT,ETH/USDT "
                          "(or set Top N)."),
        "top": _field("Top N", "integer", "Exchange: the N spot markets of the quote currency with the "
                      "largest 24 h quote volume, resolved every day.", minimum=1),
        "quote": _field("Quote currency", "string", "Quote currency of the Top N universe.", default="USDT"),
        "path": _field("CSV folder", "string", "csv: the folder of CSV files, re-read every day."),
        "start": _field("First day", "string", "Exchange: first day fetched for a coin the project DB "
                        "does not hold yet (default: its whole history).", format="date"),
        "api_url": _field("API URL", "string", "Exchange: send every REST call to this base URL (a "
                          "mirror, a proxy, a test server)."),
        "timeout": _field("Timeout (s)", "number", "Seconds per request.", default=10),
        "retries": _field("Retries", "integer", "Retries of a request on network errors and rate limits, "
                          "with exponential backoff.", default=4, minimum=0),
    },
}


#: The project database's connection type (:class:`~crypto_ml.hooks.database.CryptoDatabaseHook`;
#: a ``postgres`` or ``sqlite`` Connection is accepted too).
DATABASE_CONNECTION = {
    "hook-class-name": "crypto_ml.hooks.database.CryptoDatabaseHook",
    "hook-name": "Crypto-ML project database",
    "connection-type": "crypto_ml_db",
    "ui-field-behaviour": {
        "hidden-fields": [],
        "relabeling": {"schema": "Database"},
        "placeholders": {"host": "postgres.example.com", "port": "5432", "schema": "crypto_ml",
                         "login": "crypto_ml"},
    },
    "conn-fields": {
        "url": _field("URL", "string", "A full SQLAlchemy URL instead of the fields above (e.g. "
                      "sqlite:////data/crypto_ml.db or postgresql+psycopg2://user@host/db); wins when set."),
    },
}

#: The prediction engine's connection type (:class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
ENGINE_CONNECTION = {
    "hook-class-name": "crypto_ml.hooks.engine.CryptoEngineHook",
    "hook-name": "Crypto-ML prediction engine",
    "connection-type": "crypto_ml_engine",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "login", "password"],
        "relabeling": {"host": "Broker URL"},
        "placeholders": {"host": "redis://redis:6379/0"},
    },
    "conn-fields": {
        "result_backend": _field("Result backend", "string", "Where the engine's results are read, "
                                 "e.g. redis://redis:6379/1 (default: the environment's)."),
        "key_prefix": _field("Key prefix", "string", "Redis only: prefix of every key of the engine."),
    },
}


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
            ENGINE_CONNECTION,
            DATABASE_CONNECTION,
            MARKET_CONNECTION,
        ],
    }
