"""Trigger that waits, in the triggerer, for a prediction-engine task to finish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

RUNNING_STATES = ("PENDING", "RECEIVED", "STARTED", "RETRY")


class EngineTaskTrigger(BaseTrigger):
    """Poll the engine's result backend until a task succeeds, fails, or ``timeout`` passes.

    Fires exactly one event, a dict with ``status``:

    - ``"success"``: ``result`` holds the task's return value;
    - ``"failed"``: the task ran and failed (``message`` is its error);
    - ``"timeout"``: the task was still ``state`` after ``timeout`` seconds (no worker took it, the
      task was lost, or it is too slow);
    - ``"error"``: the result backend could not be read ``max_errors`` times in a row.

    :param engine_task_id: the Celery task id returned by the submit operator.
    :param engine_conn_id: Connection of the engine (see :class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
    :param poll_interval: seconds between polls.
    :param timeout: seconds from ``started_at`` after which the wait gives up.
    :param started_at: epoch seconds when the wait began (kept across triggerer restarts).
    :param max_errors: consecutive backend errors tolerated before giving up.
    """

    def __init__(
        self,
        *,
        engine_task_id: str,
        engine_conn_id: str = "crypto_ml_engine",
        poll_interval: float = 2.0,
        timeout: float = 600.0,
        started_at: float | None = None,
        max_errors: int = 5,
    ) -> None:
        super().__init__()
        self.engine_task_id = engine_task_id
        self.engine_conn_id = engine_conn_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.started_at = time.time() if started_at is None else started_at
        self.max_errors = max_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "crypto_ml.triggers.engine.EngineTaskTrigger",
            {
                "engine_task_id": self.engine_task_id,
                "engine_conn_id": self.engine_conn_id,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "started_at": self.started_at,
                "max_errors": self.max_errors,
            },
        )

    def _get_state(self) -> tuple[str, Any]:
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id).get_state(self.engine_task_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        errors = 0
        state: str | None = None
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
                    yield TriggerEvent(
                        {
                            **base,
                            "status": "error",
                            "message": f"the engine's result backend failed {errors} times in a row: "
                            f"{type(exc).__name__}: {exc}",
                        }
                    )
                    return
            else:
                if state == "SUCCESS":
                    yield TriggerEvent({**base, "status": "success", "result": value})
                    return
                if state in ("FAILURE", "REVOKED"):
                    yield TriggerEvent({**base, "status": "failed", "state": state, "message": value})
                    return
            waited = time.time() - self.started_at
            if waited >= self.timeout:
                yield TriggerEvent(
                    {
                        **base,
                        "status": "timeout",
                        "state": state,
                        "message": (
                            f"engine task {self.engine_task_id} still {state or 'unknown'} after "
                            f"{waited:.0f} s (timeout {self.timeout:.0f} s): no engine worker took it "
                            "(broker down or no worker on the queue?), or the task was lost"
                        ),
                    }
                )
                return
            await asyncio.sleep(self.poll_interval)
