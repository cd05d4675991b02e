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
    "crypto_ml.pipeline.steps",
    "crypto_ml.data.features",
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
    """Import ``modules`` and configure the project's ORM mappers (a failure is logged, never
    raised); the seconds it took.

    Measured on the Celery stack, 89-coin day, one invocation each (``bench_orchestration.py
    compare --executors celery``): configuring only our registry ran the day in 60.3 / 56.0 s
    against 65.2 / 61.3 s without (a transform's own time p50 0.57 s against 0.95 s); configuring
    every registry (Airflow's too, ``configure_mappers()``) made it 76.8 s, and adding a
    ``gc.freeze()`` here 91.2 s (against 58.9 / 61.1 s without either): each task process cost
    more CPU. Airflow already freezes the collector before it forks its workers."""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a preload must never stop Airflow from starting
            log.warning("crypto_ml preload: could not import %s: %s", name, exc)
    try:
        # Every task's migrate() compares the database with the newest migration: read the migration
        # scripts here once, not in each task (about a tenth of a transform's time, py-spy).
        from crypto_ml.storage.db import head_revision

        head_revision()
    except Exception as exc:  # noqa: BLE001
        log.warning("crypto_ml preload: could not read the migrations' head: %s", exc)
    try:
        # SQLAlchemy configures ORM mappers on the first query of a process: about 0.4 CPU-s, which
        # every forked task would pay again (1.2 s of a transform's 1.3 s on a busy Celery worker).
        from crypto_ml.storage import Base

        Base.registry.configure()
    except Exception as exc:  # noqa: BLE001
        log.warning("crypto_ml preload: could not configure the ORM mappers: %s", exc)
    return time.perf_counter() - started
