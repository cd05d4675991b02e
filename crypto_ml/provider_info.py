"""Provider metadata, so ``airflow providers list`` shows crypto-ml and the UI offers its
Connection types (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

import pkgutil

from crypto_ml import __version__

#: The provider's kinds of classes -> the package holding them; every module of each package is
#: listed (:func:`modules_of`), so a new operator, sensor, trigger or hook module is never left out
#: (``tests/test_provider_info.py`` checks each listed module holds a class of its kind, and that no
#: such class lives elsewhere in the package).
PACKAGES = {
    "hooks": "crypto_ml.hooks",
    "operators": "crypto_ml.operators",
    "sensors": "crypto_ml.sensors",
    "triggers": "crypto_ml.triggers",
}


def modules_of(package: str) -> list[str]:
    """The modules of one of :data:`PACKAGES`, sorted, found on disk without importing them."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    return sorted(
        f"{package}.{m.name}"
        for m in pkgutil.iter_modules(spec.submodule_search_locations)
        if not m.name.startswith("_")
    )


def _field(label: str, kind: str, description: str, **schema) -> dict:
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], **schema}}


def _market_fields() -> dict:
    """Every market kind's Connection fields (each kind declares its own; :mod:`crypto_ml.markets`)."""
    from crypto_ml.markets import conn_fields

    return conn_fields()


#: The market setting's connection type, as the UI's connection form shows it (Airflow reads this
#: metadata without importing the hook). See :mod:`crypto_ml.markets`.
MARKET_CONNECTION = {
    "hook-class-name": "crypto_ml.hooks.market.CryptoMarketHook",
    "hook-name": "Crypto-ML market",
    "connection-type": "crypto_ml_market",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "login", "password"],
        "relabeling": {"host": "Market (replay, csv, or a ccxt exchange id)"},
        "placeholders": {"host": "binance"},
    },
    "conn-fields": _market_fields(),
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
        "placeholders": {
            "host": "postgres.example.com",
            "port": "5432",
            "schema": "crypto_ml",
            "login": "crypto_ml",
        },
    },
    "conn-fields": {
        "url": _field(
            "URL",
            "string",
            "A full SQLAlchemy URL instead of the fields above (e.g. "
            "sqlite:////data/crypto_ml.db or postgresql+psycopg2://user@host/db); wins when set.",
        ),
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
        "result_backend": _field(
            "Result backend",
            "string",
            "Where the engine's results are read, e.g. redis://redis:6379/1 (default: the environment's).",
        ),
        "key_prefix": _field("Key prefix", "string", "Redis only: prefix of every key of the engine."),
    },
}


def get_provider_info() -> dict:
    """What ``airflow providers list`` and the UI read (the ``apache_airflow_provider`` entry point)."""
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
        **{
            kind: [{"integration-name": "Crypto-ML", "python-modules": modules_of(package)}]
            for kind, package in PACKAGES.items()
        },
        "connection-types": [
            ENGINE_CONNECTION,
            DATABASE_CONNECTION,
            MARKET_CONNECTION,
        ],
    }
