"""Modules every pipeline task imports, to load once in a parent process before it forks tasks
(see ``plugins/airflow_local_settings.py``). Never TensorFlow: it is not fork-safe."""

from __future__ import annotations

import importlib
import logging
import time

log = logging.getLogger(__name__)

#: In import order; each one a module the coin pipeline's tasks import anyway.
MODULES = (
    "pandas",
    "sqlalchemy",
    "celery",
    "kombu.transport.sqlalchemy",
    "crypto_ml.storage",
    "crypto_ml.pipeline",
    "crypto_ml.trading.service",
    "crypto_ml.engine.client",
    "crypto_ml.hooks.database",
    "crypto_ml.hooks.engine",
    "crypto_ml.hooks.market",
    "crypto_ml.operators.transform",
    "crypto_ml.operators.engine",
    "crypto_ml.operators.trading",
    "crypto_ml.sensors.engine",
    "crypto_ml.sensors.dag_runs",
)


def preload(modules: tuple[str, ...] = MODULES) -> float:
    """Import ``modules`` (a failure is logged, never raised); the seconds it took."""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a preload must never stop Airflow from starting
            log.warning("crypto_ml preload: could not import %s: %s", name, exc)
    return time.perf_counter() - started
