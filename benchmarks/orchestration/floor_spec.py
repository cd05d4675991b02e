"""Read the shape of a version's pipeline DAGs (its own DagBag, in its own environment) as JSON.

    python floor_spec.py DAGS_FOLDER OUT.json

Run with the version's interpreter and ``PYTHONPATH`` (its ``crypto_ml``), so the DAG files are
parsed exactly as that version's dag-processor parses them. Per DAG: schedule, run limits and,
per task, its operator class and module, upstream tasks, trigger rule, whether it is mapped (and
over which task's output, by ``expand`` or ``expand_kwargs``), whether it is a branch, whether
it can defer (``deferrable`` / ``execute_complete``) or starts from the triggerer
(``start_from_trigger``), and, for Airflow's ``TriggerDagRunOperator``, its arguments. Nothing
here knows the project's task names: ``floor_dags.py`` rebuilds the same shape with no-op bodies.
"""

from __future__ import annotations

import json
import sys


def _producer(expand_input) -> tuple[str | None, str]:
    """The task whose output a mapped task expands over, and how (``kwargs``: expand_kwargs)."""
    value = getattr(expand_input, "value", None)
    kind = "kwargs" if type(expand_input).__name__.startswith("ListOfDicts") else "expand"
    args = value.values() if isinstance(value, dict) else [value]
    for arg in args:
        op = getattr(arg, "operator", None)
        if op is not None:
            return op.task_id, kind
    return None, kind


def describe(dag) -> dict:
    tasks = []
    for task in dag.tasks:
        mapped = type(task).__name__ == "MappedOperator"
        cls = task.operator_class if mapped else type(task)
        if isinstance(cls, dict):  # serialized form (not expected from a DagBag)
            cls_name, module = cls.get("task_type", "?"), cls.get("_task_module", "?")
            mro = []
        else:
            cls_name, module = cls.__name__, cls.__module__
            mro = [c.__name__ for c in cls.__mro__]
        partial = dict(getattr(task, "partial_kwargs", {}) or {}) if mapped else {}

        def attr(name, default=None, *, task=task, mapped=mapped, partial=partial):
            if mapped:
                return partial.get(name, getattr(task, name, default))
            return getattr(task, name, default)

        info = {
            "task_id": task.task_id,
            "class": cls_name,
            "module": module,
            "upstream": sorted(task.upstream_task_ids),
            "downstream": sorted(task.downstream_task_ids),
            "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            "retries": attr("retries", 0),
            "mapped": mapped,
            "branch": any(
                n in ("BranchMixIn", "BaseBranchOperator", "SkipMixin") and "Branch" in n for n in mro
            ),
            "deferrable": bool(attr("deferrable", False))
            or (not isinstance(cls, dict) and "execute_complete" in dir(cls)),
            "start_from_trigger": bool(attr("start_from_trigger", False)),
            "poll": attr("poll_interval", None) or attr("poke_interval", None),
            "task_group": getattr(getattr(task, "task_group", None), "group_id", None),
            "mapped_group": bool(getattr(task, "get_closest_mapped_taskgroup", lambda: None)()),
        }
        if mapped:
            info["map_over"], info["map_kind"] = _producer(task.expand_input)
        if cls_name == "TriggerDagRunsOperator":  # crypto_ml's batched fan-out: kept, fed like the real one
            runs = attr("runs")
            info["runs_from"] = getattr(getattr(runs, "operator", None), "task_id", None)
            info["trigger"] = {
                "trigger_dag_id": attr("trigger_dag_id"),
                "wait_for_completion": False,
                "reset_dag_run": attr("reset_dag_run", True),
            }
        if cls_name == "TriggerDagRunOperator":
            info["trigger"] = {
                "trigger_dag_id": attr("trigger_dag_id"),
                "wait_for_completion": attr("wait_for_completion", False),
                "deferrable": attr("deferrable", False),
                "poke_interval": attr("poke_interval", 60),
                "reset_dag_run": attr("reset_dag_run", False),
            }
        tasks.append(info)
    timetable = getattr(dag, "timetable", None)
    return {
        "dag_id": dag.dag_id,
        "timetable": type(timetable).__name__ if timetable is not None else None,
        "cron": getattr(timetable, "_expression", None),
        "start_date": dag.start_date.isoformat() if dag.start_date else None,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "tasks": tasks,
    }


def main() -> None:
    folder, out = sys.argv[1], sys.argv[2]
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # older layout
        from airflow.models.dagbag import DagBag
    bag = DagBag(folder)
    if bag.import_errors:
        raise SystemExit(f"DAG import errors in {folder}: {bag.import_errors}")
    spec = {"dags": [describe(d) for _, d in sorted(bag.dags.items())]}
    with open(out, "w") as fh:
        json.dump(spec, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
