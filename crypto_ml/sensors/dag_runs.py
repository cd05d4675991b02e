"""Sensor that waits for a set of DAG runs (e.g. the day's coin runs) in the triggerer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class DagRunsSensor(BaseOperator):
    """Wait, in the triggerer, until every run of ``run_ids`` of ``watched_dag_id`` has finished; fail
    (no retry helps) when any of them failed, naming them. One task waits for all the runs, so a
    fan-out triggered without waiting (``TriggerDagRunOperator(wait_for_completion=False)``)
    costs one task process per run, not two, and one for the whole wait.

    It starts on a worker once (to read ``run_ids``), defers into
    :class:`~crypto_ml.triggers.dag_runs.DagRunsTrigger` and ends there.

    :param watched_dag_id: the DAG of the runs.
    :param run_ids: their run ids (templated): a list, or a list of dicts with the key
        ``trigger_run_id`` (the kwargs of a mapped ``TriggerDagRunOperator``).
    :param poll_interval: seconds between two counts of the finished runs.
    """

    template_fields: Sequence[str] = ("run_ids",)
    ui_color = "#e8f4ea"

    def __init__(
        self, *, watched_dag_id: str, run_ids: Any, poll_interval: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.watched_dag_id = watched_dag_id
        self.run_ids = run_ids
        self.poll_interval = poll_interval

    def _ids(self) -> list[str]:
        return [r["trigger_run_id"] if isinstance(r, dict) else str(r) for r in (self.run_ids or [])]

    def execute(self, context: Context) -> Any:
        from crypto_ml.triggers.dag_runs import DagRunsTrigger

        ids = self._ids()
        if not ids:
            self.log.info("no %s runs to wait for", self.watched_dag_id)
            return {"finished": 0, "failed": []}
        self.log.info("waiting in the triggerer for %d %s runs", len(ids), self.watched_dag_id)
        self.defer(
            trigger=DagRunsTrigger(dag_id=self.watched_dag_id, run_ids=ids, poll_interval=self.poll_interval),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Only when the trigger's task-end event was handed to a resumed task (``dag.test()``):
        count again here."""
        from airflow.sdk.exceptions import AirflowFailException

        from crypto_ml.triggers.dag_runs import failed_runs

        ids = self._ids()
        failed = event.get("failed") if isinstance(event, dict) else failed_runs(self.watched_dag_id, ids)
        if failed:
            raise AirflowFailException(
                f"{len(failed)} of {len(ids)} {self.watched_dag_id} runs failed: {', '.join(failed)}"
            )
        return {"finished": len(ids), "failed": []}
