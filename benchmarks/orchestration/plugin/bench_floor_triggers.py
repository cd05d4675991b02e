"""Benchmark-only trigger of the no-op floor (``floor_dags.py``), copied into a floor run's plugins
folder (on every Airflow component's ``sys.path``; a trigger cannot live in the DAGs folder).

:class:`FloorRunsDoneTrigger` is Airflow's own ``DagStateTrigger`` (wait until the given runs of a
DAG reach one of ``states``) that can also end the task in the triggerer (``end_from_trigger``),
for a floor task standing for a real one that waits for the fanned-out runs and ends there.
"""

from __future__ import annotations

from airflow.providers.standard.triggers.external_task import DagStateTrigger
from airflow.triggers.base import TaskSuccessEvent


class FloorRunsDoneTrigger(DagStateTrigger):
    def __init__(self, *, end_from_trigger: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.end_from_trigger = end_from_trigger

    def serialize(self):
        _, data = super().serialize()
        return "bench_floor_triggers.FloorRunsDoneTrigger", {
            **data,
            "end_from_trigger": self.end_from_trigger,
        }

    async def run(self):
        async for event in super().run():
            yield TaskSuccessEvent() if self.end_from_trigger else event
            return
