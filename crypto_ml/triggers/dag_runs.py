"""Trigger that waits, in the triggerer, until a set of DAG runs has finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

FINISHED = ("success", "failed")


def count_runs(dag_id: str, run_ids: list[str], states: list[str] | None = None) -> int:
    """How many of ``run_ids`` exist (in ``states``), through the Task SDK (no metadata DB
    access of our own: the triggerer and the task runner both answer it)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return RuntimeTaskInstance.get_dr_count(dag_id=dag_id, run_ids=run_ids, states=states)


def failed_runs(dag_id: str, run_ids: list[str]) -> list[str]:
    """The runs of ``run_ids`` that failed (one state query per run: only called when some did)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    return [r for r in run_ids if RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=r) == "failed"]


class DagRunsTrigger(BaseTrigger):
    """Wait until every existing run of ``run_ids`` of ``dag_id`` has finished, then end the task
    here: success when none failed, else failure naming them (``end_task=True``, the default), or
    fire one event ``{"status": "done", "failed": [...], "finished": n}``.

    The runs are counted in two queries per poll, whatever their number, every ``poll_interval``
    seconds. A run id that was never created (its trigger task failed) is not waited for.

    :param dag_id: the DAG of the runs.
    :param run_ids: the run ids to wait for.
    :param poll_interval: seconds between two counts.
    :param end_task: end the task in the triggerer (task-end events) instead of resuming it.
    """

    def __init__(
        self, *, dag_id: str, run_ids: list[str], poll_interval: float = 5.0, end_task: bool = True
    ) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.run_ids = list(run_ids)
        self.poll_interval = poll_interval
        self.end_task = end_task

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "crypto_ml.triggers.dag_runs.DagRunsTrigger",
            {
                "dag_id": self.dag_id,
                "run_ids": self.run_ids,
                "poll_interval": self.poll_interval,
                "end_task": self.end_task,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            existing = await asyncio.to_thread(count_runs, self.dag_id, self.run_ids)
            finished = await asyncio.to_thread(count_runs, self.dag_id, self.run_ids, list(FINISHED))
            if finished >= existing:
                break
            await asyncio.sleep(self.poll_interval)
        failed: list[str] = []
        if await asyncio.to_thread(count_runs, self.dag_id, self.run_ids, ["failed"]):
            failed = await asyncio.to_thread(failed_runs, self.dag_id, self.run_ids)
        self.log.info(
            "%d of %d %s runs finished, %d failed%s",
            finished,
            len(self.run_ids),
            self.dag_id,
            len(failed),
            f": {', '.join(failed)}" if failed else "",
        )
        if not self.end_task:
            yield TriggerEvent({"status": "done", "failed": failed, "finished": finished})
        elif failed:
            yield TaskFailedEvent()
        else:
            yield TaskSuccessEvent(xcoms={"return_value": {"finished": finished, "failed": []}})
