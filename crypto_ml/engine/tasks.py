"""The engine's Celery tasks: thin wrappers over :mod:`crypto_ml.engine.service`.

``crypto_ml.predict`` and ``crypto_ml.stats`` on the ``predict`` queue, ``crypto_ml.train`` on
``train`` (routes: :mod:`crypto_ml.settings.engine`). Each takes the keyword arguments of one
:class:`~crypto_ml.engine.request.EngineRequest` (its :meth:`~crypto_ml.engine.request.EngineRequest.to_json`)
and nothing else. ``crypto_ml.heavy.backtest`` and ``crypto_ml.heavy.forecast`` on ``heavy`` take
one unit of :func:`crypto_ml.evaluation.units.backtest_units` or
:func:`~crypto_ml.evaluation.units.strategy_units` (see :mod:`crypto_ml.engine.heavy`).

The tasks are shared tasks (``@shared_task``): importing this module builds no app and reads no
setting. The worker's app (:mod:`crypto_ml.engine.app`) includes it, and its configuration sets the
retry budget (``task_annotations``: ``max_retries``, ``retry_backoff_max``).

Retries: transient errors (database ``OperationalError``, connection errors, timeouts) are retried
with exponential backoff; :class:`~crypto_ml.engine.protocol.EngineInputError` fails the task at
once (no retry helps), logged without a traceback. Messages are acknowledged after the task ran and
requeued when its process died, so every task is idempotent (see :mod:`crypto_ml.engine.service`).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.exc import DisconnectionError, OperationalError

from crypto_ml.engine.heavy import BACKTEST_TASK, FORECAST_TASK, backtest_unit_task, forecast_unit_task
from crypto_ml.engine.protocol import PREDICT_TASK, STATS_TASK, TRAIN_TASK, EngineInputError
from crypto_ml.engine.request import EngineRequest
from crypto_ml.engine.service import process_stats, run_predict, run_train

#: Transient errors that are retried with backoff.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DisconnectionError,
    ConnectionError,
    TimeoutError,
)

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_jitter": True,
    "throws": (EngineInputError,),  # expected failures: logged without a traceback
    "acks_late": True,
    "reject_on_worker_lost": True,
}


def _request(name: str, args: tuple[Any, ...], kwargs: dict[str, Any], task: str) -> EngineRequest:
    if args:
        raise EngineInputError(f"{name} takes keyword arguments only, got positional {args!r}")
    return EngineRequest.from_json(kwargs, task=task)


@shared_task(name=PREDICT_TASK, **_TASK_OPTIONS)
def predict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`~crypto_ml.engine.service.run_predict` of the request in the keyword arguments."""
    return run_predict(_request(PREDICT_TASK, args, kwargs, "predict"), hostname=self.request.hostname)


@shared_task(name=TRAIN_TASK, **_TASK_OPTIONS)
def train(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`~crypto_ml.engine.service.run_train` of the request in the keyword arguments."""
    return run_train(_request(TRAIN_TASK, args, kwargs, "train"), hostname=self.request.hostname)


@shared_task(name=STATS_TASK, bind=True, acks_late=False)
def stats(self) -> dict[str, Any]:
    """Stats of the pool process that runs it (:func:`~crypto_ml.engine.service.process_stats`),
    for monitoring and benchmarks."""
    return {**process_stats(), "hostname": self.request.hostname}


@shared_task(
    name=BACKTEST_TASK,
    bind=True,
    throws=(EngineInputError,),
    acks_late=True,
    reject_on_worker_lost=True,
    track_started=False,
)
def backtest(self, *args: Any, **unit: Any) -> dict[str, Any]:
    """:func:`~crypto_ml.engine.heavy.backtest_unit_task` of the unit in the keyword arguments. Not
    marked STARTED, so that a unit already done keeps its answer in every result backend."""
    if args:
        raise EngineInputError(f"{BACKTEST_TASK} takes keyword arguments only, got {len(args)} positional")
    return backtest_unit_task(self, unit)


@shared_task(
    name=FORECAST_TASK,
    bind=True,
    throws=(EngineInputError,),
    acks_late=True,
    reject_on_worker_lost=True,
    track_started=False,
)
def forecast(self, *args: Any, **unit: Any) -> dict[str, Any]:
    """:func:`~crypto_ml.engine.heavy.forecast_unit_task` of the unit in the keyword arguments (the
    strategy backtest's forecasts of one coin and model); not marked STARTED, as ``backtest``."""
    if args:
        raise EngineInputError(f"{FORECAST_TASK} takes keyword arguments only, got {len(args)} positional")
    return forecast_unit_task(self, unit)
