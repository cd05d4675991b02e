"""The no-op floor of a pipeline's shape: its DAGs rebuilt from ``floor_spec.json`` (next to this
file), same DAG ids, task ids, dependencies, trigger rules, fan-out and deferral, no work.

Copied into a benchmark run's DAGs folder by ``benchmarks/bench_orchestration.py``. Per task:

- Airflow's ``TriggerDagRunOperator`` and crypto_ml's batched ``TriggerDagRunsOperator`` are kept as
  they are (same arguments; the batched one fed by the same upstream task; mapped the same way over
  the same upstream task): the fan-out is orchestration, not work;
- ``EmptyOperator`` stays empty (Airflow never starts a process for it);
- every other task becomes a no-op operator of the same kind, chosen from the structure and from
  how many task processes the real task started per task instance in the real run
  (``starts``): 0 with ``start_from_trigger`` -> starts in the triggerer and ends there (a
  ``TimeDeltaTrigger(0)`` with ``end_from_trigger``); ``start_from_trigger`` and 1 -> starts in
  the triggerer and resumes once in a worker; a deferrable task whose starts all deferred
  (``deferrals``: the process exited without a success/failure) -> defers once and ends in the
  triggerer; one with more starts than deferrals -> defers once and resumes; otherwise a plain task
  (one start). A task waiting in the triggerer right after a fan-out that does not wait
  (``TriggerDagRunOperator(wait_for_completion=False)``) waits for the floor's own fanned-out runs
  (Airflow's ``DagStateTrigger``, through ``bench_floor_triggers.py`` in the run's plugins folder)
  instead of firing at once. A branch returns the downstream task the real run took most
  (``branch_choice``);
- a task whose output feeds a mapped task returns one item per coin of the real run (the same
  count; run ids ``<coin>__<day>``); every other task returns ``{"history_day", "coins", "market"}``.
  ``<day>`` is the spec's ``day`` for the master run of the spec's ``logical_date`` (or for any
  run when the spec has none) and ``<day>+<n>`` for the run ``n`` days later, so a second master run on the
  same stack (``bench_orchestration.py --days 2``) fans out runs of its own instead of resetting
  the first run's.

An unknown shape (a mapped task group, a mapped task that is not fed by one upstream task) fails
the parse with a message naming it: extend this file rather than benchmark a different shape.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import DAG, BaseOperator
from airflow.triggers.base import StartTriggerArgs

SPEC = json.loads((Path(__file__).with_name("floor_spec.json")).read_text())
COINS: list[str] = SPEC["coins"]
DAY: str = SPEC["day"]


class FloorError(RuntimeError):
    pass


FANOUTS = ("TriggerDagRunOperator", "TriggerDagRunsOperator")


def run_day(context) -> str:
    """The day in the fanned-out run ids of the master run of ``context`` (see the module doc):
    ``DAY``, or ``DAY+<n>`` for the master run ``n`` days after the spec's ``logical_date``."""
    logical = context["dag_run"].logical_date
    first = SPEC.get("logical_date")
    if logical is None or first is None:
        return DAY
    n = (logical.date() - dt.date.fromisoformat(first)).days
    return DAY if n == 0 else f"{DAY}{n:+d}"


def _items(kind: str, consumer: dict) -> list:
    if kind == "kwargs" and consumer["class"] in FANOUTS:
        return [{"trigger_run_id": f"{c}__{DAY}", "conf": {"coin": c, "as_of": DAY}} for c in COINS]
    if kind == "kwargs":
        return [{} for _ in COINS]
    return list(COINS)


def _for_run(value, context):
    """``value`` with the fan-out items' run ids of this master run's day."""
    day = run_day(context) if isinstance(value, list) else DAY
    if day == DAY:
        return value
    return [
        {**item, "trigger_run_id": item["trigger_run_id"].replace(f"__{DAY}", f"__{day}")}
        if isinstance(item, dict) and "trigger_run_id" in item
        else item
        for item in value
    ]


class NoopOperator(BaseOperator):
    """One task process; returns ``value``."""

    def __init__(self, *, value=None, **kwargs):
        super().__init__(**kwargs)
        self.value = value

    def execute(self, context):
        return _for_run(self.value, context)


class NoopBranchOperator(BaseBranchOperator):
    """A branch with no work: follows ``choice``, skips the other direct downstream tasks."""

    def __init__(self, *, choice: str, value=None, **kwargs):
        super().__init__(**kwargs)
        self.choice = choice

    def choose_branch(self, context):
        return self.choice


class NoopDeferOperator(NoopOperator):
    """Defers once to a trigger that fires at once, then resumes (two task processes)."""

    def execute(self, context):
        self.defer(trigger=TimeDeltaTrigger(dt.timedelta(0)), method_name="execute_complete")

    def execute_complete(self, context, event=None):
        return _for_run(self.value, context)


class NoopDeferEndOperator(NoopOperator):
    """Defers once to a trigger that fires at once and ends the task there (one task process)."""

    def execute(self, context):
        self.defer(
            trigger=TimeDeltaTrigger(dt.timedelta(0), end_from_trigger=True), method_name="execute_complete"
        )

    def execute_complete(self, context, event=None):
        return _for_run(self.value, context)


def _runs_trigger(dag_id: str, poll: float, end: bool, day: str = DAY):
    from bench_floor_triggers import FloorRunsDoneTrigger  # the run's plugins folder

    return FloorRunsDoneTrigger(
        dag_id=dag_id,
        states=["success", "failed"],
        run_ids=[f"{c}__{day}" for c in COINS],
        poll_interval=poll,
        end_from_trigger=end,
    )


class WaitRunsDeferOperator(NoopOperator):
    """Waits in the triggerer for the fanned-out runs (deferred from a worker start); resumes once
    unless ``end`` (then the trigger ends the task)."""

    def __init__(self, *, watched: str, poll: float, end: bool, **kwargs):
        super().__init__(**kwargs)
        self.watched, self.poll, self.end = watched, poll, end

    def execute(self, context):
        self.defer(
            trigger=_runs_trigger(self.watched, self.poll, self.end, run_day(context)),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event=None):
        return _for_run(self.value, context)


class NoopFromTriggerOperator(NoopOperator):
    """Starts in the triggerer and resumes once in a worker (one task process)."""

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow.providers.standard.triggers.temporal.TimeDeltaTrigger",
        trigger_kwargs={"delta": dt.timedelta(0)},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )

    def execute_complete(self, context, event=None):
        return _for_run(self.value, context)


class NoopInTriggerOperator(NoopFromTriggerOperator):
    """Starts in the triggerer and ends there (no task process)."""

    start_trigger_args = StartTriggerArgs(
        trigger_cls="airflow.providers.standard.triggers.temporal.TimeDeltaTrigger",
        trigger_kwargs={"delta": dt.timedelta(0), "end_from_trigger": True},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )


def _runs_from_trigger(watched: str, poll: float, end: bool) -> type:
    """A task that starts in the triggerer waiting for the fanned-out runs (and ends there if ``end``).
    Its trigger's arguments are fixed at parse time: it waits for the runs of the spec's ``day``
    only, so a spec of several master runs (``logical_date``) cannot use it."""
    if SPEC.get("logical_date"):
        raise FloorError(
            f"a wait for {watched}'s runs that starts in the triggerer is not rebuilt for several "
            "master runs yet (its run ids are fixed at parse time)"
        )
    run_ids = [f"{c}__{DAY}" for c in COINS]

    class WaitRunsFromTrigger(NoopOperator):
        start_from_trigger = True
        start_trigger_args = StartTriggerArgs(
            trigger_cls="bench_floor_triggers.FloorRunsDoneTrigger",
            trigger_kwargs={
                "dag_id": watched,
                "states": ["success", "failed"],
                "run_ids": run_ids,
                "poll_interval": poll,
                "end_from_trigger": end,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

        def execute_complete(self, context, event=None):
            return _for_run(self.value, context)

    return WaitRunsFromTrigger


def _order(tasks: list[dict]) -> list[dict]:
    done, out, by_id = set(), [], {t["task_id"]: t for t in tasks}
    while len(out) < len(tasks):
        ready = [t for t in tasks if t["task_id"] not in done and set(t["upstream"]) <= done]
        if not ready:
            raise FloorError(f"cycle among {sorted(set(by_id) - done)}")
        for t in ready:
            done.add(t["task_id"])
            out.append(t)
    return out


def build(spec: dict) -> DAG:
    tasks = spec["tasks"]
    consumers = {t["map_over"]: t for t in tasks if t["mapped"]}
    consumers.update({t["runs_from"]: {**t, "map_kind": "kwargs"} for t in tasks if t.get("runs_from")})
    for t in tasks:
        if t.get("mapped_group"):
            raise FloorError(f"{spec['dag_id']}.{t['task_id']}: mapped task groups are not rebuilt yet")
        if t["mapped"] and not t.get("map_over"):
            raise FloorError(
                f"{spec['dag_id']}.{t['task_id']}: mapped over something other than one task's output"
            )
    schedule = None
    if spec.get("timetable") == "CronDataIntervalTimetable" and spec.get("cron"):
        from airflow.timetables.interval import CronDataIntervalTimetable

        schedule = CronDataIntervalTimetable(spec["cron"], timezone="UTC")
    elif spec.get("cron"):
        schedule = spec["cron"]
    start = (
        pendulum.parse(spec["start_date"])
        if spec.get("start_date")
        else pendulum.datetime(2026, 11, 1, tz="UTC")
    )
    dag = DAG(
        dag_id=spec["dag_id"],
        schedule=schedule,
        start_date=start,
        catchup=False,
        max_active_runs=spec.get("max_active_runs") or 16,
        max_active_tasks=spec.get("max_active_tasks") or 16,
        tags=["bench-floor"],
        default_args={"retries": 0},
    )
    ops: dict = {}
    by_id = {t["task_id"]: t for t in tasks}
    starts = SPEC.get("starts", {}).get(spec["dag_id"], {})
    with dag:
        for t in _order(tasks):
            tid = t["task_id"]
            common = {"task_id": tid, "trigger_rule": t["trigger_rule"]}
            value = (
                _items(t.get("map_kind") or consumers[tid].get("map_kind"), consumers[tid])
                if tid in consumers
                else {"history_day": DAY, "coins": COINS, "market": "no-op floor"}
            )
            n = starts.get(tid)
            deferrals = SPEC.get("deferrals", {}).get(spec["dag_id"], {}).get(tid, 0)
            # A task after a fan-out that does not wait (TriggerDagRunOperator without
            # wait_for_completion) and that waits in the triggerer stands for "wait for those runs".
            watched = next(
                (
                    by_id[u]["trigger"]["trigger_dag_id"]
                    for u in t["upstream"]
                    if by_id[u]["class"] in FANOUTS and not by_id[u]["trigger"]["wait_for_completion"]
                ),
                None,
            )
            if t["class"] == "TriggerDagRunOperator":
                kw = {**t["trigger"], "logical_date": None}
                if t["mapped"]:
                    if t.get("map_kind") != "kwargs":
                        raise FloorError(
                            f"{tid}: TriggerDagRunOperator mapped with expand() is not rebuilt yet"
                        )
                    ops[tid] = TriggerDagRunOperator.partial(
                        **common, **kw, map_index_template="{{ task.conf['coin'] }}"
                    ).expand_kwargs(ops[t["map_over"]].output)
                else:
                    ops[tid] = TriggerDagRunOperator(**common, **kw)
            elif t["class"] == "TriggerDagRunsOperator":  # the batched fan-out, kept as it is
                from crypto_ml.operators.fanout import TriggerDagRunsOperator

                ops[tid] = TriggerDagRunsOperator(
                    **common,
                    trigger_dag_id=t["trigger"]["trigger_dag_id"],
                    runs=ops[t["runs_from"]].output,
                    reset_dag_run=t["trigger"]["reset_dag_run"],
                )
            elif t["class"] == "EmptyOperator":
                ops[tid] = EmptyOperator(**common)
            else:
                if t["branch"]:
                    cls, extra = (
                        NoopBranchOperator,
                        {
                            "choice": SPEC.get("branch_choice", {}).get(f"{spec['dag_id']}.{tid}")
                            or sorted(t["downstream"])[0]
                        },
                    )
                elif t["start_from_trigger"] and watched:
                    cls, extra = _runs_from_trigger(watched, t.get("poll") or 5.0, end=not n), {}
                elif t["start_from_trigger"]:
                    cls, extra = (NoopInTriggerOperator if not n else NoopFromTriggerOperator), {}
                elif t["deferrable"] and watched and (deferrals or n is None):
                    cls, extra = (
                        WaitRunsDeferOperator,
                        {"watched": watched, "poll": t.get("poll") or 5.0, "end": (n or 0) <= deferrals},
                    )
                elif t["deferrable"] and n is None:
                    cls, extra = NoopDeferOperator, {}
                elif t["deferrable"] and deferrals and n <= deferrals:
                    cls, extra = NoopDeferEndOperator, {}
                elif t["deferrable"] and deferrals:
                    cls, extra = NoopDeferOperator, {}
                else:
                    cls, extra = NoopOperator, {}
                if t["mapped"]:
                    ops[tid] = cls.partial(**common, **extra).expand(value=ops[t["map_over"]].output)
                else:
                    ops[tid] = cls(**common, **extra, value=value)
        for t in tasks:
            for up in t["upstream"]:
                ops[up] >> ops[t["task_id"]]
    return dag


for _spec in SPEC["dags"]:
    if _spec["dag_id"] in SPEC.get("dag_ids", [_spec["dag_id"]]):
        globals()[_spec["dag_id"]] = build(_spec)
