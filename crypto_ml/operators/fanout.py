"""Operator: trigger many runs of a DAG from one task (the batched form of Airflow's
``TriggerDagRunOperator``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class TriggerDagRunsOperator(BaseOperator):
    """Trigger one run of ``trigger_dag_id`` per entry of ``runs``, from one task process.

    A mapped ``TriggerDagRunOperator`` starts one task process per run (measured: on the embedded
    default, 89 processes took 49 s of the daily run's 117 s while the coin runs competed for the
    same two cores). This task sends, for every run, the very request a ``TriggerDagRunOperator``
    task makes (the Task SDK's ``TriggerDagRun`` message, which its supervisor turns into the
    Execution API's ``POST /execution/dag-runs/{dag_id}/{run_id}``), so the runs are created exactly
    as that operator creates them: same run ids, conf, ``run_after`` and reset semantics, each run
    visible, clearable and triggerable on its own.

    :param trigger_dag_id: the DAG to run.
    :param runs: the runs (templated): dicts with ``trigger_run_id`` and ``conf`` (the kwargs a
        mapped ``TriggerDagRunOperator`` takes), e.g. an upstream task's output.
    :param reset_dag_run: clear a run that already exists (a re-run of the day) instead of
        failing on it; nothing is written twice by tasks that are idempotent. Only the first try
        resets: a retry keeps the runs its earlier try created.
    :param request_attempts: tries of one trigger request the api-server did not answer (busy:
        seen on the embedded SQLite default with every process at once), 2, 4, 8 s apart.
    :return: the run ids, in order.
    """

    template_fields: Sequence[str] = ("runs",)
    ui_color = "#ffefeb"

    def __init__(self, *, trigger_dag_id: str, runs: Any, reset_dag_run: bool = True,
                 request_attempts: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request_attempts = request_attempts
        self.trigger_dag_id = trigger_dag_id
        self.runs = runs
        self.reset_dag_run = reset_dag_run

    def execute(self, context: Context) -> list[str]:
        from airflow.sdk.exceptions import AirflowException

        runs = list(self.runs or [])
        bad = [r for r in runs if not (isinstance(r, dict) and r.get("trigger_run_id"))]
        if bad:
            raise AirflowException(f"every run needs a trigger_run_id; got {bad[:3]!r}")
        # A retry of this task keeps the runs its earlier try created (they may be running).
        reset = self.reset_dag_run and context["ti"].try_number <= 1
        run_after = datetime.now(timezone.utc)
        triggered: list[str] = []
        for run in runs:
            self._trigger(run["trigger_run_id"], run.get("conf") or {}, run_after, reset,
                          done=f"{len(triggered)} of {len(runs)} triggered before it")
            triggered.append(run["trigger_run_id"])
            self.log.info("triggered %s run %s", self.trigger_dag_id, run["trigger_run_id"])
        self.log.info("triggered %d %s runs", len(triggered), self.trigger_dag_id)
        return triggered

    def _trigger(self, run_id: str, conf: dict, run_after: datetime, reset: bool, *, done: str) -> None:
        """Send one trigger request; a request the api-server did not answer (busy, a timeout) is
        sent again, without reset (it may have created the run)."""
        import time

        from airflow.sdk.exceptions import AirflowException, AirflowRuntimeError, ErrorType
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

        for attempt in range(1, self.request_attempts + 1):
            try:
                answer = task_runner.SUPERVISOR_COMMS.send(
                    TriggerDagRun(dag_id=self.trigger_dag_id, run_id=run_id, conf=conf, logical_date=None,
                                  run_after=run_after, reset_dag_run=reset))
            except AirflowRuntimeError as exc:
                if attempt == self.request_attempts:
                    raise AirflowException(f"could not trigger {self.trigger_dag_id} run {run_id} ({done}): "
                                           f"{exc}") from None
                self.log.warning("trigger of %s run %s not answered (%s); again in %d s",
                                 self.trigger_dag_id, run_id, exc, 2 ** attempt)
                time.sleep(2 ** attempt)
                reset = False
                continue
            if isinstance(answer, ErrorResponse):
                if answer.error == ErrorType.DAGRUN_ALREADY_EXISTS and not reset:
                    return  # created by an earlier attempt or try
                raise AirflowException(f"could not trigger {self.trigger_dag_id} run {run_id} ({done}): "
                                       f"{answer.error}: {answer.detail}")
            return
