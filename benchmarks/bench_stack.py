"""One daily run over every coin: the embedded default vs the Celery stack with 1 and 2 workers.

    python benchmarks/bench_stack.py [--variants embedded,celery-1,celery-2] [--day 2026-11-25]

Each variant starts its stack on a fresh Airflow home and fresh databases, triggers
``crypto_ml_master`` for the same logical date (the same replayed history day, 89 coins) and
times it from the trigger to the end of the master run. Then it reads every task instance of the
run from the metadata DB and says where the time went:

- ``embedded``: LocalExecutor with 8 task processes, SQLite, one engine worker with 2 processes;
- ``celery-N``: CeleryExecutor, PostgreSQL and Redis on 127.0.0.1, N Airflow workers with 8 slots
  each and N engine workers with 1 process each (``crypto-ml stack``).

Prints a Markdown table (paste it into ``benchmarks/results/stack.md``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crypto_ml.settings.paths import project_env

MASTER, COIN = "crypto_ml_master", "crypto_ml_coin"


def _airflow(env: dict, *args: str) -> str:
    from crypto_ml.stack.supervisor import find_bin

    return subprocess.run(
        [find_bin("airflow"), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def _wait_parsed(stack, env, timeout=240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        out = _airflow(env, "dags", "list", "-o", "plain")
        if MASTER in out and COIN in out:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("DAGs not parsed")
        time.sleep(2)


def _ts(value):
    """A timestamp from either database as a naive UTC datetime (SQLite hands back strings)."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def run_variant(name: str, day: str, work: Path) -> dict:
    from sqlalchemy import create_engine, text

    home = work / name
    home.mkdir(parents=True)
    os.environ["CRYPTO_ML_HOME"] = str(home / "crypto_ml")
    os.environ["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"  # only the triggered run
    if name == "embedded":
        from crypto_ml.stack.local import LocalStack

        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["CRYPTO_ML_DATABASE_URL"] = f"sqlite:///{home / 'project.db'}"
        stack = LocalStack(port=8097, log_dir=home / "logs" / "stack")
        meta_url = f"sqlite:///{home / 'airflow.db'}"
        setup = "LocalExecutor (8 processes), SQLite, 1 engine worker x 2 processes"
    else:
        from crypto_ml.stack.celery import CeleryStack, generate_secrets

        n = int(name.split("-")[1])
        os.environ.pop("CRYPTO_ML_DATABASE_URL", None)
        os.environ.update(generate_secrets())
        stack = CeleryStack(
            name=f"bench_stack_{os.getpid()}_{n}",
            port=8097,
            flower_port=5597,
            home=home,
            airflow_workers=n,
            engine_workers=n,
            scheduled=False,
        )
        meta_url = stack.env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        setup = f"CeleryExecutor: {n} Airflow worker(s) x 8 slots, {n} engine worker(s) x 1 process"
    started = time.monotonic()
    with stack:
        up = time.monotonic() - started
        env = stack.process_env("cli", stack.env())
        _wait_parsed(stack, env)
        for dag_id in (COIN, MASTER):
            _airflow(env, "dags", "unpause", dag_id)
        t0 = time.monotonic()
        _airflow(env, "dags", "trigger", MASTER, "--logical-date", f"{day}T00:00:00+00:00")
        engine = create_engine(meta_url)
        try:
            while True:
                stack.check_alive()
                with engine.connect() as conn:
                    state = conn.execute(
                        text("SELECT state FROM dag_run WHERE dag_id = :d"), {"d": MASTER}
                    ).scalar()
                if state in ("success", "failed"):
                    break
                time.sleep(1)
            wall = time.monotonic() - t0
            print(f"[bench] {name}: master run {state} after {wall:.1f} s", flush=True)
            with engine.connect() as conn:
                tis = conn.execute(
                    text(
                        "SELECT dag_id, task_id, state, hostname, queued_dttm, start_date, end_date "
                        "FROM task_instance"
                    )
                ).all()
        finally:
            engine.dispose()
    if name != "embedded":
        stack.destroy()
    from types import SimpleNamespace

    tis = [
        SimpleNamespace(
            **{**row._mapping, **{k: _ts(row._mapping[k]) for k in ("queued_dttm", "start_date", "end_date")}}
        )
        for row in tis
    ]
    ran = [t for t in tis if t.start_date is not None and t.end_date is not None]
    waits = [(t.start_date - t.queued_dttm).total_seconds() for t in ran if t.queued_dttm is not None]
    fanout = ("run_coin_pipeline", "run_coin_pipelines")  # the mapped fan-out before, the batched one now
    busy = sum((t.end_date - t.start_date).total_seconds() for t in ran if t.task_id not in fanout)
    by_task: dict[str, list[float]] = {}
    for t in ran:
        by_task.setdefault(t.task_id, []).append((t.end_date - t.start_date).total_seconds())
    return {
        "variant": name,
        "setup": setup,
        "state": state,
        "up": up,
        "wall": wall,
        "tis": len(tis),
        "ran": len(ran),
        "hosts": sorted({t.hostname for t in ran if t.hostname}),
        "wait_p50": statistics.median(waits) if waits else 0.0,
        "busy": busy,
        "by_task": {k: statistics.median(v) for k, v in sorted(by_task.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="embedded,celery-1,celery-2")
    parser.add_argument("--day", default="2026-11-25", help="logical date (replays 2017-06-25: 89 coins)")
    args = parser.parse_args()
    os.environ.update(project_env())
    work = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    results = []
    for name in args.variants.split(","):
        print(f"[bench] {name} ...", flush=True)
        result = run_variant(name, args.day, work)
        print(
            f"[bench] {name}: {result['state']} in {result['wall']:.1f} s "
            f"(stack up in {result['up']:.0f} s), "
            f"{result['ran']} task instances ran on {result['hosts']}",
            flush=True,
        )
        results.append(result)
    base = next((r["wall"] for r in results if r["variant"] == "embedded"), results[0]["wall"])
    print(
        "\n| Variant | Set-up | Master run | Time vs embedded | Task instances run | Queue wait p50 | "
        "Task time (sum, excl. deferred fan-out) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['variant']} | {r['setup']} | {r['wall']:.1f} s ({r['state']}) | {r['wall'] / base:.2f}x | "
            f"{r['ran']} | {r['wait_p50']:.2f} s | {r['busy']:.0f} s |"
        )
    tasks = sorted({k for r in results for k in r["by_task"]})
    print("\nMedian run time per task instance (s):\n")
    print("| Task | " + " | ".join(r["variant"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for task in tasks:
        print(
            f"| {task} | " + " | ".join(f"{r['by_task'].get(task, float('nan')):.2f}" for r in results) + " |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
