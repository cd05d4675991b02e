"""Fan-out designs and the orchestration floor, measured on all bundled coins in one run.

    python benchmarks/bench_fanout.py [--port 8094]

Starts the local stack (LocalExecutor, SQLite, one engine worker with 2 processes) on a fresh
Airflow home and project DB, stores the history up to today's replayed day (not timed), then
times, one after the other, to the end of each run:

1. ``crypto_ml_master``: the run the scheduler starts when the DAG is unpaused (today's interval),
   one ``crypto_ml_coin`` DAG run per coin (the design we ship), timed from the unpause;
2. ``bench_mapped_group``: the same operators as a task group mapped over the coins in one run;
3. ``bench_noop``: the same shape and task count with no-op tasks (the orchestration floor).

Prints wall times, task-instance counts and ratios (see docs/pipeline.md, "Fan-out design").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from crypto_ml.settings.paths import project_env

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8094)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    dags = work / "dags"
    dags.mkdir()
    for src in [*(ROOT / "dags").glob("*.py"), *(ROOT / "benchmarks" / "fanout_dags").glob("*.py")]:
        (dags / src.name).symlink_to(src)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(work / "airflow"),
            **project_env(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "CRYPTO_ML_HOME": str(work / "home"),
            "CRYPTO_ML_DATABASE_URL": f"sqlite:///{work / 'project.db'}",
        }
    )
    import datetime as dt

    from crypto_ml.pipeline.catalog import replay_day
    from crypto_ml.pipeline.steps import poll
    from crypto_ml.stack.local import LocalStack, master_run

    today = dt.datetime.now(dt.UTC).date().isoformat()  # the scheduled run's logical date
    polled = poll(today)  # history up to the day, stored once for every variant
    coins = polled["coins"]
    history_day = replay_day(today).isoformat()
    print(f"{len(coins)} coins have data on {history_day}; work dir {work}", flush=True)

    results = []
    with LocalStack(port=args.port) as stack:
        ids = ["crypto_ml_master", "crypto_ml_coin", "bench_mapped_group", "bench_noop"]
        stack.client.unpause(tuple(ids[1:]))
        variants = [
            ("crypto_ml_master", "per-coin DAG runs (shipped)", None),
            (
                "bench_mapped_group",
                "mapped task group, one run",
                {"as_of": history_day, "logical_date": today},
            ),
            ("bench_noop", "no-op tasks, same shape (floor)", {"coins": len(coins)}),
        ]
        for dag_id, label, conf in variants:
            started = time.monotonic()
            if conf is None:  # the scheduler's own daily run, started by the unpause
                stack.client.unpause((dag_id,))
                run_id = master_run(stack, lambda msg: print(msg, flush=True))
            else:
                run_id = stack.client.trigger(dag_id, conf=conf)
            state, tis = wait_run(dag_id, run_id, stack)
            seconds = time.monotonic() - started
            results.append((label, dag_id, state, tis, seconds))
            print(f"{label}: {state} in {seconds:.1f} s, {tis} task instances", flush=True)

    floor = results[-1][4]
    print(f"\n{len(coins)} coins, replayed day {history_day}, LocalExecutor + SQLite, 1 engine worker x2")
    print(f"{'design':36} {'state':8} {'task inst.':>10} {'wall':>9} {'vs floor':>9}")
    for label, _, state, tis, seconds in results:
        print(f"{label:36} {state:8} {tis:>10} {seconds:8.1f}s {seconds / floor:8.2f}x")


def wait_run(dag_id: str, run_id: str, stack, timeout: float = 3600) -> tuple[str, int]:
    """The run's final state and its task instances (for the master: plus every coin run's)."""
    client = stack.client
    try:
        state = client.wait_for_run(dag_id, run_id, timeout=timeout, interval=2)
    except TimeoutError:
        return "timeout", 0
    tis = len(client.task_instances(dag_id, run_id))
    if dag_id == "crypto_ml_master":  # plus every coin run it triggered
        tis += len(client.task_instances("crypto_ml_coin"))
    return state, tis


if __name__ == "__main__":
    sys.exit(main())
