"""Sensor that waits for a prediction-engine task (deferrable by default)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crypto_ml.hooks.engine import CryptoEngineHook


def result_from_event(event: dict[str, Any], engine_task_id: str) -> Any:
    """The engine task's result from an :class:`~crypto_ml.triggers.engine.EngineTaskTrigger`
    event, or the failure it stands for: a timeout (no retry), a failed engine task (no retry),
    or an unreadable result backend (a retry may find it back)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

    status = event.get("status")
    if status == "success":
        return event.get("result")
    if status == "timeout":
        raise AirflowSensorTimeout(event.get("message"))
    if status == "failed":
        raise AirflowFailException(
            f"engine task {engine_task_id} {event.get('state')}: {event.get('message')}"
        )
    raise RuntimeError(event.get("message") or f"unexpected trigger event {event!r}")


class EngineTaskSensor(BaseSensorOperator):
    """Wait for an engine task and return its result (pushed to XCom).

    Deferrable by default: the wait happens in the triggerer and costs no worker slot. With
    ``deferrable=False`` it falls back to ``mode="reschedule"`` (a slot only while poking).
    The wait never hangs: after ``timeout`` seconds the task fails with a message saying what
    the engine last reported; a failed engine task fails this task at once, with its error.

    :param engine_task_id: Celery task id to wait for (templated).
    :param engine_conn_id: Connection of the engine.
    :param deferrable: wait in the triggerer (default True).
    """

    template_fields: Sequence[str] = ("engine_task_id",)
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        engine_task_id: str,
        engine_conn_id: str = "crypto_ml_engine",
        deferrable: bool = True,
        poke_interval: float = 2.0,
        timeout: float = 600.0,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.engine_task_id = engine_task_id
        self.engine_conn_id = engine_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> CryptoEngineHook:
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        state, value = self.hook.get_state(self.engine_task_id)
        self.log.info("engine task %s: %s", self.engine_task_id, state)
        if state == "SUCCESS":
            return PokeReturnValue(is_done=True, xcom_value=value)
        if state in ("FAILURE", "REVOKED"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"engine task {self.engine_task_id} {state}: {value}")
        return False

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if done:
            return done.xcom_value
        from crypto_ml.triggers.engine import EngineTaskTrigger

        self.defer(
            trigger=EngineTaskTrigger(
                engine_task_id=self.engine_task_id,
                engine_conn_id=self.engine_conn_id,
                poll_interval=self.poke_interval,
                timeout=self.timeout,
                started_at=time.time(),
            ),
            method_name="execute_complete",
            # Backstop in case the triggerer itself is lost: the trigger times out first.
            timeout=timedelta(seconds=self.timeout + 120),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        result = result_from_event(event, self.engine_task_id)
        if isinstance(result, dict):
            self.log.info(
                "engine task %s done: %s",
                self.engine_task_id,
                {k: result.get(k) for k in ("coin", "as_of", "model", "version", "hostname")},
            )
        return result
