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
        failing on it; nothing is written twice by tasks that are idempotent.
    :return: the run ids, in order.
    """

    template_fields: Sequence[str] = ("runs",)
    ui_color = "#ffefeb"

    def __init__(self, *, trigger_dag_id: str, runs: Any, reset_dag_run: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trigger_dag_id = trigger_dag_id
        self.runs = runs
        self.reset_dag_run = reset_dag_run

    def execute(self, context: Context) -> list[str]:
        from airflow.sdk.exceptions import AirflowException
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

        runs = list(self.runs or [])
        bad = [r for r in runs if not (isinstance(r, dict) and r.get("trigger_run_id"))]
        if bad:
            raise AirflowException(f"every run needs a trigger_run_id; got {bad[:3]!r}")
        run_after = datetime.now(timezone.utc)
        triggered: list[str] = []
        for run in runs:
            run_id = run["trigger_run_id"]
            answer = task_runner.SUPERVISOR_COMMS.send(
                TriggerDagRun(dag_id=self.trigger_dag_id, run_id=run_id, conf=run.get("conf") or {},
                              logical_date=None, run_after=run_after, reset_dag_run=self.reset_dag_run)
            )
            if isinstance(answer, ErrorResponse):
                raise AirflowException(
                    f"could not trigger {self.trigger_dag_id} run {run_id} ({len(triggered)} of "
                    f"{len(runs)} triggered before it): {answer.error}: {answer.detail}"
                )
            triggered.append(run_id)
            self.log.info("triggered %s run %s", self.trigger_dag_id, run_id)
        self.log.info("triggered %d %s runs", len(triggered), self.trigger_dag_id)
        return triggered
