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
    """Import ``modules`` and configure the ORM's mappers (a failure is logged, never raised); the
    seconds it took. (Airflow freezes the collector's view of all this before it forks its Celery
    pool and LocalExecutor workers; a second ``gc.freeze`` here made every task process on the
    Celery stack cost 0.15 CPU-s more, measured.)"""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a preload must never stop Airflow from starting
            log.warning("crypto_ml preload: could not import %s: %s", name, exc)
    try:
        # SQLAlchemy configures ORM mappers on the first query of a process: about 0.4 CPU-s, which
        # every forked task would pay again (1.2 s of a transform's 1.3 s on a busy Celery worker).
        # Only the project's own registry: configuring every registry here (Airflow's too) made
        # each task process on the Celery stack cost about 0.15 CPU-s more (measured).
        from crypto_ml.storage import Base

        Base.registry.configure()
    except Exception as exc:  # noqa: BLE001
        log.warning("crypto_ml preload: could not configure the ORM mappers: %s", exc)
    return time.perf_counter() - started
