"""``crypto-ml stack``: the production shape (CeleryExecutor) on this machine.

- ``crypto-ml stack secrets``: print fresh secrets as ``export`` lines (``eval "$(...)"``);
- ``crypto-ml stack up``: start every process and keep it running until Ctrl-C;
- ``crypto-ml stack run``: start it, run ``crypto_ml_master`` once through the REST API, print the
  day's forecasts, stop.
"""

from __future__ import annotations

import shlex


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stack",
        help="the production shape on this machine: Airflow on CeleryExecutor (PostgreSQL, Redis, "
        "FAB auth), N Airflow workers, M engine workers, Flower",
    )
    sub = p.add_subparsers(title="stack commands", metavar="ACTION", required=True)
    secrets = sub.add_parser(
        "secrets",
        help="print fresh secrets as export lines (for a try; production takes them from a secrets store)",
    )
    secrets.set_defaults(func=cmd_secrets)
    for name, func, text in (
        ("up", cmd_up, "start the stack and keep it running until Ctrl-C"),
        ("run", cmd_run, "start the stack, run crypto_ml_master once through the REST API, stop"),
    ):
        a = sub.add_parser(name, help=text)
        a.add_argument(
            "--pg",
            default="postgresql://postgres@127.0.0.1:5432/postgres",
            help="PostgreSQL server (databases <name>_airflow and <name> are created)",
        )
        a.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis server of both brokers")
        a.add_argument("--name", default="crypto_ml", help="database name and Redis key prefix")
        a.add_argument("--airflow-workers", type=int, default=2, help="Airflow Celery workers (2)")
        a.add_argument(
            "--airflow-concurrency", type=int, default=16, help="task slots per Airflow worker (16)"
        )
        a.add_argument("--engine-workers", type=int, default=2, help="prediction-engine workers (2)")
        a.add_argument("--engine-concurrency", type=int, default=1, help="processes per engine worker (1)")
        a.add_argument("--port", type=int, default=8080, help="api-server port (8080)")
        a.add_argument("--flower-port", type=int, default=5555, help="Flower port (5555)")
        a.set_defaults(func=func)
    run = sub.choices["run"]
    run.add_argument("--date", default=None, help="logical date of the master run (default: today, UTC)")
    run.add_argument("--conf", default=None, help='run conf as JSON, e.g. \'{"model": "drift"}\'')
    run.add_argument("--keep-running", action="store_true", help="leave the stack up afterwards")
    run.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")


def _stack(args, *, scheduled: bool):
    from crypto_ml.stack.celery import CeleryStack

    return CeleryStack(
        pg_url=args.pg,
        redis_url=args.redis,
        name=args.name,
        port=args.port,
        flower_port=args.flower_port,
        airflow_workers=args.airflow_workers,
        airflow_concurrency=args.airflow_concurrency,
        engine_workers=args.engine_workers,
        engine_concurrency=args.engine_concurrency,
        scheduled=scheduled,
    )


def cmd_secrets(args) -> int:
    from crypto_ml.stack.celery import generate_secrets

    for key, value in generate_secrets().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_up(args) -> int:
    from crypto_ml.stack.celery import StackConfigError

    stack = _stack(args, scheduled=True)
    try:
        with stack:
            print(
                f"[stack] up: Airflow {stack.base_url} (user {stack.admin_user}), Flower {stack.flower_url}; "
                f"{stack.airflow_workers} Airflow workers, {stack.engine_workers} engine workers; "
                f"logs in {stack.log_dir}. Ctrl-C stops it.",
                flush=True,
            )
            print(paused_report(stack.unpause_pipeline()), flush=True)
            print(
                "[stack] supervised: a component that exits is restarted with backoff "
                f"(see {stack.log_dir / 'supervisor.log'})",
                flush=True,
            )
            stack.run_until_interrupted()
    except StackConfigError as exc:
        print(f"[stack] {exc}")
        return 2
    return 0


def paused_report(paused: dict[str, bool]) -> str:
    """What ``stack up`` says about paused DAGs: the pipeline's were unpaused; every DAG still
    paused is named with the command that unpauses it (a run of a paused DAG waits silently)."""
    from crypto_ml.stack.follow import COIN, MASTER

    lines = [f"[stack] unpaused the pipeline DAGs: {COIN}, {MASTER}"]
    still = sorted(d for d, is_paused in paused.items() if is_paused)
    if still:
        lines.append(f"[stack] PAUSED (their runs wait until unpaused): {', '.join(still)}")
        lines += [f"[stack]   unpause: airflow dags unpause {d}" for d in still]
    return "\n".join(lines)


def cmd_run(args) -> int:
    import datetime as dt
    import json

    from crypto_ml.stack.celery import StackConfigError, run_on_stack

    date = args.date or dt.datetime.now(dt.UTC).date().isoformat()
    try:
        return run_on_stack(
            _stack(args, scheduled=False),
            logical_date=f"{date[:10]}T00:00:00Z",
            conf=json.loads(args.conf) if args.conf else None,
            keep_running=args.keep_running,
            timeout=args.timeout,
        )
    except StackConfigError as exc:
        print(f"[stack] {exc}")
        return 2
