"""``crypto-ml pipeline``: the whole pipeline once, on this machine, with the embedded default."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pipeline",
        help="start Airflow (LocalExecutor, SQLite) and an engine worker, run crypto_ml_master "
        "once, print the forecasts and decisions, stop everything",
        description="The main job on the embedded default (no external server): start Airflow "
        "(api-server, scheduler, dag-processor, triggerer; LocalExecutor, SQLite in AIRFLOW_HOME) "
        "and one prediction-engine worker, let the scheduler run crypto_ml_master, follow it, print "
        "every coin's forecast and decision, write the day's plot, stop what it started. Ctrl-C (or "
        "SIGTERM) stops everything.",
    )
    p.add_argument("--port", type=int, default=8080, help="api-server port, on 127.0.0.1 (default 8080)")
    p.add_argument("--keep-running", action="store_true", help="leave the stack up to explore the UI")
    p.add_argument(
        "--timeout", type=float, default=1800, help="give up after this many seconds, stopping everything"
    )
    p.set_defaults(func=cmd_pipeline)


def cmd_pipeline(args) -> int:
    from crypto_ml.stack.local import run_pipeline

    return run_pipeline(port=args.port, keep_running=args.keep_running, timeout=args.timeout)
