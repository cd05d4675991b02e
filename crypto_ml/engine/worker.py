"""The engine worker's process lifecycle (Celery signals): migrate before the pool forks, warm each
pool child after it. The worker's app (:mod:`crypto_ml.engine.app`) includes this module; the
handlers only run in a worker.

TensorFlow's threads: before the pool forks, a worker whose environment does not set
``CRYPTO_ML_TF_THREADS`` sets it to its CPUs divided by its concurrency (:func:`tf_threads_for`), so
its pool processes together use about the CPUs the worker may run on instead of each taking every
core (intra- and inter-op, applied when a child imports TensorFlow:
:func:`crypto_ml.forecasting.lstm.import_keras`). A worker cannot see the other workers of its host:
run one worker with ``-c N`` per host, or set ``CRYPTO_ML_TF_THREADS`` (1 for N workers of ``-c 1``
on N cores)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import signals

log = logging.getLogger(__name__)


def tf_threads_for(concurrency: int, cpus: int | None = None) -> int:
    """TensorFlow threads per pool process: the CPUs this process may run on (``cpus``, default its
    affinity) shared by ``concurrency`` processes, at least 1."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, concurrency))


def _set_tf_threads(concurrency: int) -> None:
    from crypto_ml.forecasting.lstm import THREADS_ENV

    if not os.environ.get(THREADS_ENV, "").strip():
        # Inherited by the pool children forked after this (each logs it when ready).
        os.environ[THREADS_ENV] = str(tf_threads_for(concurrency))


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before the pool forks: set TensorFlow's threads per pool process,
    migrate the database once, then drop the connections so no child inherits them. Never import
    TensorFlow here."""
    from crypto_ml.storage import database_url, dispose_engine, migrate

    _set_tf_threads(int(getattr(sender, "concurrency", None) or 1))

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
    from crypto_ml.settings.engine import EngineConfig
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
    from crypto_ml.forecasting.lstm import THREADS_ENV

    log.info("crypto_ml engine: pool process %d ready (preload=%s, tf_threads=%s)", os.getpid(), preload,
             os.environ.get(THREADS_ENV) or "TensorFlow's default")
