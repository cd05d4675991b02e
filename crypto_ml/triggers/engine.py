"""Trigger that waits, in the triggerer, for a prediction-engine task to finish.

The one way to wait for an engine task: :class:`~crypto_ml.sensors.engine.EngineTaskSensor`
(started in the triggerer, ``start_from_trigger``) and
:class:`~crypto_ml.operators.engine.EngineSubmitOperator` with ``wait_for_completion=True``
(defers into it after sending) both use it, and with ``end_task=True`` (their default) the task
ends in the triggerer: no worker process starts to resume it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

RUNNING_STATES = ("PENDING", "RECEIVED", "STARTED", "RETRY")


class EngineTaskTrigger(BaseTrigger):
    """Watch the engine's result backend until a task succeeds, fails, or ``timeout`` passes.

    The backend is read at growing intervals: ``first_poll`` seconds after the start, then
    doubling up to ``poll_interval`` (a warm prediction is back within a fraction of a second, a
    training may take minutes; a fixed 1 s poll of 1,000 waits would cost the triggerer a core).

    With ``end_task=False`` it fires one :class:`TriggerEvent`, a dict with ``status``:

    - ``"success"``: ``result`` holds the task's return value;
    - ``"failed"``: the task ran and failed (``message`` is its error);
    - ``"timeout"``: the task was still ``state`` after ``timeout`` seconds (no worker took it, the
      task was lost, or it is too slow);
    - ``"error"``: the result backend could not be read ``max_errors`` times in a row.

    With ``end_task=True`` the task ends here: success is a :class:`TaskSuccessEvent` whose XCom
    ``return_value`` is the result; a failed engine task or a timeout is a :class:`TaskFailedEvent`
    (no retry helps; the reason is in the task's log). Only ``"error"`` (the backend unreachable) is
    still a plain event, so the task resumes on a worker and fails there, with its retries.

    :param engine_task_id: the Celery task id returned by the submit operator. When a task starts
        in the triggerer, Airflow renders the trigger's attributes named in the task's
        ``template_fields`` there, so this may be a template (e.g. an XCom pull).
    :param engine_conn_id: Connection of the engine (see :class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
    :param poll_interval: longest interval between two reads of the result backend (s).
    :param first_poll: first interval (s); doubled after every read.
    :param timeout: seconds from ``started_at`` after which the wait gives up.
    :param started_at: epoch seconds when the wait began (kept across triggerer restarts; default:
        when the trigger first runs).
    :param max_errors: consecutive backend errors tolerated before giving up.
    :param end_task: end the task in the triggerer (task-end events) instead of resuming it.
    """

    def __init__(
        self,
        *,
        engine_task_id: str,
        engine_conn_id: str = "crypto_ml_engine",
        poll_interval: float = 2.0,
        first_poll: float = 0.05,
        timeout: float = 600.0,
        started_at: float | None = None,
        max_errors: int = 5,
        end_task: bool = False,
    ) -> None:
        super().__init__()
        self.engine_task_id = engine_task_id
        self.engine_conn_id = engine_conn_id
        self.poll_interval = poll_interval
        self.first_poll = first_poll
        self.timeout = timeout
        self.started_at = started_at
        self.max_errors = max_errors
        self.end_task = end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "crypto_ml.triggers.engine.EngineTaskTrigger",
            {
                "engine_task_id": self.engine_task_id,
                "engine_conn_id": self.engine_conn_id,
                "poll_interval": self.poll_interval,
                "first_poll": self.first_poll,
                "timeout": self.timeout,
                "started_at": self.started_at,
                "max_errors": self.max_errors,
                "end_task": self.end_task,
            },
        )

    def _get_state(self) -> tuple[str, Any]:
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id).get_state(self.engine_task_id)

    def _end(self, payload: dict[str, Any]) -> TriggerEvent:
        """The event for ``payload``: a task-end event when this trigger ends the task."""
        if not self.end_task or payload["status"] == "error":
            return TriggerEvent(payload)
        if payload["status"] == "success":
            result = payload["result"]
            if isinstance(result, dict):
                self.log.info("engine task %s done: %s", self.engine_task_id,
                              {k: result.get(k) for k in ("coin", "as_of", "model", "version", "hostname")})
            return TaskSuccessEvent(xcoms={"return_value": result})
        self.log.error("engine task %s %s: %s", self.engine_task_id, payload.get("state"), payload["message"])
        return TaskFailedEvent()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started_at = self.started_at if self.started_at is not None else time.time()
        errors = 0
        state: str | None = None
        delay = self.first_poll
        base = {"engine_task_id": self.engine_task_id}
        while True:
            try:
                # The result backend client is blocking: keep it off the triggerer's event loop.
                state, value = await asyncio.to_thread(self._get_state)
                errors = 0
            except Exception as exc:  # noqa: BLE001 - any backend error counts towards max_errors
                errors += 1
                self.log.warning("engine result backend error %d/%d: %s", errors, self.max_errors, exc)
                if errors >= self.max_errors:
                    yield self._end({
                        **base,
                        "status": "error",
                        "message": f"the engine's result backend failed {errors} times in a row: "
                        f"{type(exc).__name__}: {exc}",
                    })
                    return
            else:
                if state == "SUCCESS":
                    yield self._end({**base, "status": "success", "result": value})
                    return
                if state in ("FAILURE", "REVOKED"):
                    yield self._end({**base, "status": "failed", "state": state,
                                     "message": f"engine task {self.engine_task_id} {state}: {value}"})
                    return
            waited = time.time() - started_at
            if waited >= self.timeout:
                yield self._end({
                    **base,
                    "status": "timeout",
                    "state": state,
                    "message": (
                        f"engine task {self.engine_task_id} still {state or 'unknown'} after "
                        f"{waited:.0f} s (timeout {self.timeout:.0f} s): no engine worker took it "
                        "(broker down or no worker on the queue?), or the task was lost"
                    ),
                })
                return
            await asyncio.sleep(min(delay, self.poll_interval, max(0.0, self.timeout - waited)))
            delay = min(delay * 2, self.poll_interval)
