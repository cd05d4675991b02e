"""The engine worker's process lifecycle (Celery signals): migrate before the pool forks, warm each
pool child after it. The worker's app (:mod:`crypto_ml.engine.app`) includes this module; the
handlers only run in a worker."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import signals

log = logging.getLogger(__name__)


@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    """In the worker's main process, before the pool forks: migrate the database once, then drop
    the connections so no child inherits them. Never import TensorFlow here."""
    from crypto_ml.storage import database_url, dispose_engine, migrate

    try:
        url = database_url()
        migrate(url)
        dispose_engine(url)
    except Exception as exc:  # noqa: BLE001 - tasks will migrate (and retry) themselves
        log.warning("crypto_ml engine: could not migrate the database at start: %s", exc)
    if "tensorflow" in sys.modules:
        log.warning("crypto_ml engine: TensorFlow was imported in the parent before the fork; "
                    "the prefork pool is not safe with it")


@signals.worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    """In each pool child, after the fork: fresh engines and warm state, built here."""
    from crypto_ml.engine.cache import process_loader
    from crypto_ml.engine.config import EngineConfig
    from crypto_ml.storage import dispose_engine

    try:
        dispose_engine()
    except Exception:  # noqa: BLE001
        pass
    preload = EngineConfig.from_env().preload
    if preload in ("loader", "tf"):
        process_loader()
        import sklearn.linear_model  # noqa: F401 - the linear models' first fit costs ~1 s otherwise
    if preload == "tf":
        from crypto_ml.forecasting.lstm import import_keras

        import_keras()
    log.info("crypto_ml engine: pool process %d ready (preload=%s)", os.getpid(), preload)
