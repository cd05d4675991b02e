"""Sensor that waits for a prediction-engine task: started and ended in the triggerer by default."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.triggers.base import StartTriggerArgs

from crypto_ml.triggers.engine import trigger_template

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crypto_ml.hooks.engine import CryptoEngineHook

TRIGGER = "crypto_ml.triggers.engine.EngineTaskTrigger"


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
        message = str(event.get("message"))
        if not message.startswith("engine task"):
            message = f"engine task {engine_task_id} {event.get('state')}: {message}"
        raise AirflowFailException(message)
    raise RuntimeError(event.get("message") or f"unexpected trigger event {event!r}")


def finish_wait(event: Any, engine_task_id: str, hook: CryptoEngineHook) -> Any:
    """The result of a wait that resumed on a worker: from a plain trigger event, or, for a
    task-end event handed to a resumed task (``dag.test()`` runs triggers inline and resumes the
    task with the event's state, not its XCom), read again from the engine."""
    if not isinstance(event, dict):
        state, value = hook.get_state(engine_task_id)
        if state == "SUCCESS":
            event = {"status": "success", "result": value}
        elif state in ("FAILURE", "REVOKED"):
            event = {
                "status": "failed",
                "state": state,
                "message": f"engine task {engine_task_id} {state}: {value}",
            }
        else:
            event = {
                "status": "timeout",
                "state": state,
                "message": (
                    f"engine task {engine_task_id} still {state} when the wait ended: no engine worker "
                    "took it (broker down or no worker on the queue?), or the task was lost"
                ),
            }
    return result_from_event(event, engine_task_id)


class EngineTaskSensor(BaseSensorOperator):
    """Wait for an engine task and return its result (pushed to XCom).

    Deferrable (Airflow's ``[operators] default_deferrable``, which the project's ``airflow.cfg``
    sets), the task starts **and ends** in the triggerer: the scheduler hands it straight to
    :class:`~crypto_ml.triggers.engine.EngineTaskTrigger` (``start_from_trigger``; the triggerer
    renders ``engine_task_id``, e.g. the submit task's XCom), which ends it with the result as
    its XCom, or fails it with the engine's error or after ``timeout``. No worker process starts
    for the wait, unless the result backend cannot be read (the task then resumes on a worker and
    fails there, so its retries apply).

    With ``start_from_trigger=False`` it runs once on a worker and defers into the same trigger;
    with ``deferrable=False`` it pokes in ``mode="reschedule"`` (a slot only while poking).

    :param engine_task_id: Celery task id to wait for (templated).
    :param engine_conn_id: Connection id of the engine (templated; see
        :class:`~crypto_ml.hooks.engine.CryptoEngineHook`).
    :param deferrable: wait in the triggerer (default: Airflow's ``[operators] default_deferrable``).
    :param start_from_trigger: start in the triggerer, without a worker process (default True;
        needs ``deferrable``).
    :param poke_interval: longest interval between two reads of the engine's result (s); the first
        read comes after 0.05 s, then the interval doubles.
    :param timeout: seconds to wait before failing (no retry).
    """

    template_fields: Sequence[str] = ("engine_task_id", "engine_conn_id")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        engine_task_id: str,
        engine_conn_id: str = "crypto_ml_engine",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        start_from_trigger: bool = True,
        poke_interval: float = 2.0,
        timeout: float = 600.0,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, timeout=timeout, mode=mode, **kwargs)
        self.engine_task_id = engine_task_id
        self.engine_conn_id = engine_conn_id
        self.deferrable = deferrable
        self.start_from_trigger = deferrable and start_from_trigger
        if self.start_from_trigger:
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=TRIGGER,
                trigger_kwargs=self._trigger_kwargs(),
                next_method="execute_complete",
                next_kwargs=None,
                # Backstop in case the triggerer itself is lost: the trigger times out first.
                timeout=timedelta(seconds=timeout + 120),
            )

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            "engine_task_id": trigger_template(self.engine_task_id),
            "engine_conn_id": self.engine_conn_id,
            "poll_interval": self.poke_interval,
            "timeout": self.timeout,
            "end_task": True,
        }

    @cached_property
    def hook(self) -> CryptoEngineHook:
        from crypto_ml.hooks.engine import CryptoEngineHook

        return CryptoEngineHook(self.engine_conn_id)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        from crypto_ml.triggers.engine import decode_rendered

        self.engine_task_id = str(decode_rendered(self.engine_task_id))  # JSON text when a trigger pushed it
        state, value = self.hook.get_state(self.engine_task_id)
        self.log.info("engine task %s: %s", self.engine_task_id, state)
        if state == "SUCCESS":
            return PokeReturnValue(is_done=True, xcom_value=value)
        if state in ("FAILURE", "REVOKED"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"engine task {self.engine_task_id} {state}: {value}")
        return False

    def execute(self, context: Context) -> Any:
        """Runs on a worker only when not started from the trigger (or cleared to run there)."""
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if done:
            return done.xcom_value
        import time

        from crypto_ml.triggers.engine import EngineTaskTrigger

        self.defer(
            trigger=EngineTaskTrigger(**{**self._trigger_kwargs(), "started_at": time.time()}),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 120),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after a plain trigger event (the trigger ends the task itself otherwise)."""
        result = finish_wait(event, self.engine_task_id, self.hook)
        if isinstance(result, dict):
            self.log.info(
                "engine task %s done: %s",
                self.engine_task_id,
                {k: result.get(k) for k in ("coin", "as_of", "model", "version", "hostname")},
            )
        return result
