"""``crypto-ml pipeline``: the whole pipeline once, on this machine, with the embedded default."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pipeline",
        help="start Airflow (LocalExecutor, SQLite) and an engine worker, run crypto_ml_master "
        "once, print the forecasts and decisions, stop everything",
    )
    p.add_argument("--port", type=int, default=8080, help="api-server port (default 8080)")
    p.add_argument("--keep-running", action="store_true", help="leave the stack up to explore the UI")
    p.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    p.set_defaults(func=cmd_pipeline)


def cmd_pipeline(args) -> int:
    from crypto_ml.stack.local import run_pipeline

    return run_pipeline(port=args.port, keep_running=args.keep_running, timeout=args.timeout)
