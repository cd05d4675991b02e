"""Submit work to the engine and poll it: the helpers the Airflow operators and sensor call.

>>> task_id = submit_predict(coin="bitcoin", as_of="2017-09-01", model="linear", horizon=7)
>>> get_state(task_id)            # ("PENDING", None) ... ("SUCCESS", {...}) / ("FAILURE", "...")
>>> wait(task_id, timeout=60)     # the result dict, or EngineTaskFailed / TimeoutError

These only *send* messages by task name (``send_task``) through a sender app that has no tasks
(:func:`sender_app`): the caller imports neither the worker's task module, nor TensorFlow,
scikit-learn, pandas or the data. What is sent is one :class:`~crypto_ml.engine.request.EngineRequest`
(:func:`submit`), checked as it is built, with the worker's own check, so that a bad request fails
in the caller instead of in a worker; its JSON form is the message (JSON only, as the worker accepts).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.request import EngineRequest

if TYPE_CHECKING:
    from celery import Celery

    from crypto_ml.settings.engine import EngineConfig


class EngineTaskFailed(RuntimeError):
    """The engine ran the task and it failed; the message is the task's error."""


_senders: dict[str, Celery] = {}
_senders_lock = threading.Lock()


def sender_app(config: EngineConfig | None = None) -> Celery:
    """A Celery app that only sends and reads results for ``config`` (default: the environment's),
    one per distinct configuration per process. It registers no task and imports nothing of the
    worker: the same broker, result backend, queues and JSON-only settings as the worker's app
    (:func:`crypto_ml.engine.app.make_app`)."""
    from crypto_ml.settings.engine import EngineConfig

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


def _app(app: Celery | None) -> Celery:
    return app if app is not None else sender_app()


def submit(
    request: EngineRequest, *, task_id: str | None = None, queue: str | None = None, app: Celery | None = None
) -> str:
    """Send ``request`` to its task (``crypto_ml.predict`` / ``crypto_ml.train``) on its queue;
    returns the task id.

    :param task_id: use this id (e.g. derived from the Airflow task instance) so that a re-run
        submits the same task id; the work itself is idempotent either way.
    :param queue: another queue than the request's own (``predict`` / ``train``).
    """
    queue = queue or request.queue
    sender = _app(app)
    task_id = task_id or str(uuid.uuid4())
    if sender.backend.get_task_meta(task_id)["status"] == "PENDING":  # never seen: say it was sent
        sender.backend.store_result(task_id, None, SENT)
    result = sender.send_task(
        request.task_name, kwargs=request.to_json(), queue=queue, routing_key=queue, task_id=task_id
    )
    return result.id


def submit_predict(
    *, task_id: str | None = None, queue: str | None = None, app: Celery | None = None, **fields: Any
) -> str:
    """Send a ``crypto_ml.predict`` task of the :class:`~crypto_ml.engine.request.EngineRequest`
    of ``fields`` (checked here first); returns its task id."""
    return submit(EngineRequest(**fields, task="predict"), task_id=task_id, queue=queue, app=app)


def submit_train(
    *, task_id: str | None = None, queue: str | None = None, app: Celery | None = None, **fields: Any
) -> str:
    """Send a ``crypto_ml.train`` task of the :class:`~crypto_ml.engine.request.EngineRequest` of
    ``fields`` (coin, as_of, model, params); returns its task id."""
    return submit(EngineRequest(**fields, task="train"), task_id=task_id, queue=queue, app=app)


#: The state a task has from its sending until a worker starts it (Celery's own PENDING means
#: "never heard of": an unknown id, which ``crypto-ml engine status`` answers as unknown).
SENT = "SENT"

#: Namespace of the engine task ids derived from task instances (:func:`engine_task_id_of`).
ENGINE_TASK_NAMESPACE = uuid.UUID("5f1c3a52-6b0e-4d1e-9a57-63727970746f")


def engine_task_id_of(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """The engine task id of one try of one Airflow task instance: the same wherever the request is
    sent from (a worker or the triggerer) and on a resume, new per retry (a uuid5 of the TI's key)."""
    return str(uuid.uuid5(ENGINE_TASK_NAMESPACE, f"{dag_id}|{run_id}|{task_id}|{map_index}|{try_number}"))


def get_state(task_id: str, *, app: Celery | None = None) -> tuple[str, Any]:
    """``(state, result | error | info)`` of a task, without blocking.

    - ``("SUCCESS", result_dict)``
    - ``("FAILURE", "EngineInputError: unknown coin 'x' ...")``
    - ``("STARTED", {"pid": ..., "hostname": ...})``, ``("RETRY", "...")``, ``("SENT", None)``
      (sent by :func:`submit`, not started yet), ``("PENDING", None)``: an id the result backend
      does not know (never sent, or its result expired).
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


def wait(
    task_id: str,
    *,
    timeout: float = 300.0,
    interval: float = 0.1,
    max_interval: float | None = None,
    app: Celery | None = None,
) -> dict[str, Any]:
    """Poll until the task is done: its result, :class:`EngineTaskFailed`, or ``TimeoutError``.

    Polls every ``interval`` seconds, or, with ``max_interval``, first after ``interval`` and then
    doubling up to ``max_interval`` (a long training is not read ten times a second).
    """
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
        if max_interval is not None:
            interval = min(interval * 2, max_interval)
