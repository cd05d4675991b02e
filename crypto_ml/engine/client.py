"""Submit work to the engine and poll it: the helpers the Airflow operators and sensor call.

>>> task_id = submit_predict(coin="bitcoin", as_of="2017-09-01", model="linear", horizon=7)
>>> get_state(task_id)            # ("PENDING", None) ... ("SUCCESS", {...}) / ("FAILURE", "...")
>>> wait(task_id, timeout=60)     # the result dict, or EngineTaskFailed / TimeoutError

These only *send* messages by task name (``send_task``) through a sender app that has no tasks
(:func:`sender_app`): the caller imports neither the worker's task module, nor TensorFlow,
scikit-learn, pandas or the data. The payload is checked here first with the worker's own check
(:func:`crypto_ml.engine.protocol.validate_request`, a light module) so that a bad request fails
in the caller instead of in a worker. JSON only, as the worker accepts.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.config import PREDICT_QUEUE, TRAIN_QUEUE
from crypto_ml.engine.protocol import PREDICT_TASK, TRAIN_TASK, validate_request

if TYPE_CHECKING:
    from celery import Celery

    from crypto_ml.engine.config import EngineConfig

#: Terminal states of a task.
READY_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


class EngineTaskFailed(RuntimeError):
    """The engine ran the task and it failed; the message is the task's error."""


_senders: dict[str, "Celery"] = {}
_senders_lock = threading.Lock()


def sender_app(config: "EngineConfig | None" = None) -> "Celery":
    """A Celery app that only sends and reads results for ``config`` (default: the environment's),
    one per distinct configuration per process. It registers no task and imports nothing of the
    worker: the same broker, result backend, queues and JSON-only settings as the worker's app
    (:func:`crypto_ml.engine.app.make_app`)."""
    from crypto_ml.engine.config import EngineConfig

    config = config if config is not None else EngineConfig.from_env()
    key = json.dumps(config.as_dict(), sort_keys=True, default=str)
    with _senders_lock:
        if key not in _senders:
            from celery import Celery

            app = Celery("crypto_ml", set_as_current=False)
            app.config_from_object(config.celery_settings())
            app.engine_config = config
            _senders[key] = app
        return _senders[key]


def _app(app: "Celery | None") -> "Celery":
    return app if app is not None else sender_app()


def _payload(**fields: Any) -> dict[str, Any]:
    validate_request(**{k: fields.get(k) for k in ("coin", "as_of", "model", "version", "params",
                                                    "closes", "history")},
                     horizon=fields.get("horizon", 1))
    as_of = fields.get("as_of")
    if as_of is not None and not isinstance(as_of, str):
        as_of = as_of.isoformat()[:10]
    payload = {**fields, "as_of": as_of}
    return {k: v for k, v in payload.items() if v is not None}


def submit_predict(
    *,
    coin: str,
    as_of: Any = None,
    model: str = "naive",
    horizon: int = 10,
    version: int | None = None,
    params: dict[str, Any] | None = None,
    closes: list[float] | None = None,
    history: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    queue: str = PREDICT_QUEUE,
    app: "Celery | None" = None,
) -> str:
    """Send a ``crypto_ml.predict`` task; returns its task id.

    :param closes: the closes to predict from; none: the worker reads them from ``history``.
    :param history: ``"database"``: the worker reads the closes up to ``as_of`` from the project
        database (where the pipeline's ``transform`` validated them), so the message carries no
        price history; ``"bundled"`` or None: the bundled dataset (see
        :data:`~crypto_ml.engine.protocol.HISTORY_SOURCES`).
    :param task_id: use this id (e.g. derived from the Airflow task instance) so that a re-run
        submits the same task id; the prediction itself is idempotent either way.
    """
    kwargs = _payload(coin=coin, as_of=as_of, model=model, horizon=horizon, version=version,
                      params=params, closes=closes, history=history, run_id=run_id)
    result = _app(app).send_task(PREDICT_TASK, kwargs=kwargs, queue=queue, routing_key=queue,
                                 task_id=task_id)
    return result.id


def submit_train(
    *,
    coin: str,
    as_of: Any = None,
    model: str = "linear",
    params: dict[str, Any] | None = None,
    task_id: str | None = None,
    queue: str = TRAIN_QUEUE,
    app: "Celery | None" = None,
) -> str:
    """Send a ``crypto_ml.train`` task; returns its task id."""
    kwargs = _payload(coin=coin, as_of=as_of, model=model, params=params)
    kwargs.pop("horizon", None)
    result = _app(app).send_task(TRAIN_TASK, kwargs=kwargs, queue=queue, routing_key=queue,
                                 task_id=task_id)
    return result.id


def get_state(task_id: str, *, app: "Celery | None" = None) -> tuple[str, Any]:
    """``(state, result | error | info)`` of a task, without blocking.

    - ``("SUCCESS", result_dict)``
    - ``("FAILURE", "EngineInputError: unknown coin 'x' ...")``
    - ``("STARTED", {"pid": ..., "hostname": ...})``, ``("RETRY", "...")``, ``("PENDING", None)``
      (PENDING also means "unknown id": Celery cannot tell them apart).
    """
    # One read of the result backend (``AsyncResult.state`` then ``.info`` read it twice for a task
    # that is not done yet, which is every poll but the last); an error is already decoded.
    meta = _app(app).backend.get_task_meta(task_id)
    state, value = meta["status"], meta.get("result")
    if state == "SUCCESS":
        return state, value
    if state in ("FAILURE", "RETRY", "REVOKED"):
        if isinstance(value, BaseException):
            return state, f"{type(value).__name__}: {value}"
        return state, None if value is None else str(value)
    return state, value if isinstance(value, dict) else None


def wait(task_id: str, *, timeout: float = 300.0, interval: float = 0.1,
         app: "Celery | None" = None) -> dict[str, Any]:
    """Poll until the task is done: its result, :class:`EngineTaskFailed`, or ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    while True:
        state, value = get_state(task_id, app=app)
        if state == "SUCCESS":
            return value
        if state in ("FAILURE", "REVOKED"):
            raise EngineTaskFailed(f"task {task_id} {state}: {value}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"task {task_id} still {state} after {timeout:.0f} s")
        time.sleep(interval)
