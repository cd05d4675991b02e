"""The engine worker's process lifecycle (Celery signals): migrate before the pool forks, warm each
pool child after it. The worker's app (:mod:`crypto_ml.engine.app`) includes this module; the
handlers only run in a worker.

TensorFlow's threads: before the pool forks, the worker reads ``CRYPTO_ML_TF_THREADS`` and refuses
to start, in one line, when it is not a positive int. A worker whose environment does not set it
sets it to its CPUs divided by the processes that run tasks (:func:`tf_threads_for`: the
concurrency of a prefork pool, 1 for the solo and thread pools, whose tasks share one TensorFlow),
so its pool processes together use about the CPUs the worker may run on instead of each taking every
core. Every fit, load and prediction of an LSTM, the heavy tasks' included, imports TensorFlow
through :func:`crypto_ml.forecasting.lstm.import_keras`, which applies the setting (intra- and
inter-op) before TensorFlow initialises and logs TensorFlow's own values, read back, once per
process. A worker cannot see the other workers of its host: run one worker with ``-c N`` per host,
or set ``CRYPTO_ML_TF_THREADS`` (1 for N workers of ``-c 1`` on N cores)."""

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


#: Pools whose tasks run in one process (one TensorFlow shared by the pool's threads, if any).
ONE_PROCESS_POOLS = ("solo", "thread", "eventlet", "gevent")


def pool_processes(pool: Any, concurrency: int) -> int:
    """How many processes of a worker run tasks: ``concurrency`` for a prefork pool, 1 for the pools
    of :data:`ONE_PROCESS_POOLS` (``pool`` is the worker's pool name or class)."""
    # a name ("solo") or a class (celery.concurrency.solo.TaskPool)
    name = (pool if isinstance(pool, str) else getattr(pool, "__module__", "")).lower()
    return 1 if any(kind in name for kind in ONE_PROCESS_POOLS) else max(1, concurrency)


def set_tf_threads(processes: int) -> int:
    """The TensorFlow threads per process of this worker: ``CRYPTO_ML_TF_THREADS`` when set (refused
    with ``SystemExit``, one line, when it is not a positive int), else :func:`tf_threads_for` of
    ``processes``, written to the environment so that the pool children forked later inherit it."""
    from crypto_ml.forecasting.lstm import THREADS_ENV, tf_threads

    try:
        threads = tf_threads()
    except ValueError as exc:
        raise SystemExit(f"crypto_ml engine: refusing to start: {exc}") from None
    if threads is None:
        threads = tf_threads_for(processes)
        os.environ[THREADS_ENV] = str(threads)
    return threads


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    """In the worker's main process, before the pool forks: set TensorFlow's threads per pool process
    (or refuse to start on a bad setting), migrate the database once, then drop the connections so
    no child inherits them. Never import TensorFlow here."""
    from crypto_ml.storage import database_url, dispose_engine, migrate

    concurrency = int(getattr(sender, "concurrency", None) or 1)
    set_tf_threads(pool_processes(getattr(sender, "pool_cls", "prefork"), concurrency))

    try:
        url = database_url()
        migrate(url)
        dispose_engine(url)
    except Exception as exc:  # noqa: BLE001 - tasks will migrate (and retry) themselves
        log.warning("crypto_ml engine: could not migrate the database at start: %s", exc)
    if "tensorflow" in sys.modules:
        log.warning(
            "crypto_ml engine: TensorFlow was imported in the parent before the fork; "
            "the prefork pool is not safe with it"
        )


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

    log.info(
        "crypto_ml engine: pool process %d ready (preload=%s, tf_threads=%s)",
        os.getpid(),
        preload,
        os.environ.get(THREADS_ENV) or "TensorFlow's default",
    )
