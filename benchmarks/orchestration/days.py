"""Run ``crypto_ml_master`` for several consecutive days on one long-lived stack (a warm daily run).

    python days.py --days N local --date D --port P [--timeout S]
    python days.py --days N celery -- <the arguments of `crypto-ml stack run`, --date D included>

Run with the Python of the version under test (its ``crypto_ml`` is imported). It starts the
stack of ``crypto-ml pipeline`` (local) or of ``crypto-ml stack run`` (celery) with no cron runs
(``[scheduler] use_job_schedule`` off, as ``stack run`` does) and triggers ``crypto_ml_master``
through the REST API for day ``D``, then for each next day once the previous master run ended. So
the last day runs on a stack that has already run a day: every component is up, each process's
one-time costs are paid (the triggerer's in-process Execution API, the engine's warm model, the
project DB's history), as on a production stack that runs every day.
``bench_orchestration.py --days N`` measures the last master run (the newest one).

Exit code 0 when every day's master run succeeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time


def say(msg: str) -> None:
    print(msg, flush=True)


def run_days(stack, date: str, days: int, timeout: float) -> list[str]:
    """On the started ``stack``: trigger ``crypto_ml_master`` for ``date`` (YYYY-MM-DD) and each of
    the ``days - 1`` next days, each once the previous run ended; every run's final state."""
    from crypto_ml.stack.follow import MASTER, follow_master

    first = dt.datetime.fromisoformat(f"{date[:10]}T00:00:00+00:00")
    states = []
    for i in range(days):
        logical = (first + dt.timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        run_id = stack.trigger_master(logical) if i == 0 else stack.client.trigger(MASTER, logical)
        say(f"[days] day {i + 1} of {days}: triggered {MASTER} run {run_id} (logical date {logical})")
        t0 = time.monotonic()
        state = follow_master(stack.client, run_id, say, prefix=f"[days {i + 1}]", timeout=timeout)
        say(f"[days] day {i + 1}: {state} in {time.monotonic() - t0:.1f} s")
        states.append(state)
    return states


def local(args) -> list[str]:
    import os

    from crypto_ml.stack.local import LocalStack

    os.environ["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"  # LocalStack.env() starts from os.environ
    with LocalStack(port=args.port) as stack:
        return run_days(stack, args.date, args.days, args.timeout)


def celery(args) -> list[str]:
    from crypto_ml.cli import build_parser
    from crypto_ml.commands.stack import _stack

    run_args = build_parser().parse_args(["stack", "run", *args.stack_args])
    date = run_args.date or dt.datetime.now(dt.UTC).date().isoformat()
    with _stack(run_args, scheduled=False) as stack:
        return run_days(stack, date, args.days, run_args.timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2)
    sub = parser.add_subparsers(dest="executor", required=True)
    p = sub.add_parser("local")
    p.add_argument("--date", required=True, help="the first day's logical date (YYYY-MM-DD)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--timeout", type=float, default=1800, help="per day (s)")
    c = sub.add_parser("celery")
    c.add_argument("stack_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.executor == "celery" and args.stack_args[:1] == ["--"]:
        args.stack_args = args.stack_args[1:]
    states = (local if args.executor == "local" else celery)(args)
    say(f"[days] master runs: {', '.join(states)}")
    return 0 if all(s == "success" for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
