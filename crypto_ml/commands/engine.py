"""``crypto-ml engine config | predict | train | status | stats``: the prediction engine's CLI.

``stats`` shows the engine's queues (``predict``, ``train``, ``heavy``) with the messages waiting
and the workers consuming each (:mod:`crypto_ml.engine.monitor`): on the embedded default, where
there is no Flower, too.

The worker itself is Celery's: ``celery -A crypto_ml worker -Q predict,train,heavy`` (or ``-Q predict``
for a predictions-only worker) and ``celery -A crypto_ml flower`` to watch it.
"""

from __future__ import annotations

import json
import re
import sys

from crypto_ml.commands import iso_date, positive_int


def register(subparsers) -> None:
    engine = subparsers.add_parser(
        "engine",
        help="the Celery prediction engine: config, submit predict/train, task status",
        description="Start workers with `celery -A crypto_ml worker -Q predict,train,heavy`; "
        "monitor with `celery -A crypto_ml flower`.",
    )
    sub = engine.add_subparsers(title="engine commands", metavar="ENGINE_COMMAND")

    p = sub.add_parser("config", help="print the effective engine configuration (passwords masked)")
    p.set_defaults(func=cmd_config)

    for name, helptext in (("predict", "submit crypto_ml.predict"), ("train", "submit crypto_ml.train")):
        p = sub.add_parser(name, help=f"{helptext} and (unless --no-wait) wait for the result")
        p.add_argument("coin", help="coin id, e.g. bitcoin")
        p.add_argument(
            "--as-of", default=None, type=iso_date, help="YYYY-MM-DD (default: the coin's last day)"
        )
        p.add_argument("--model", default="naive" if name == "predict" else "linear", help="model name")
        if name == "predict":
            p.add_argument("--horizon", type=positive_int, default=10, help="days to forecast")
            p.add_argument(
                "--version",
                type=int,
                default=None,
                help="a trained version of the model store (default: the latest up to --as-of)",
            )
        p.add_argument("--params", default=None, help="hyperparameters as JSON, e.g. '{\"epochs\": 1}'")
        p.add_argument("--no-wait", action="store_true", help="print the task id and return")
        p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the result")
        p.set_defaults(func=cmd_submit, kind=name)

    p = sub.add_parser("status", help="state and result/error of a task id")
    p.add_argument("task_id", help="the id printed by predict/train --no-wait")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "stats",
        help="the queues (messages waiting, workers consuming each), then pid, "
        "RSS and model-cache stats of one pool process",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a worker's answer")
    p.add_argument("--json", action="store_true", help="one JSON document: {queues, process}")
    p.set_defaults(func=cmd_stats)
    engine.set_defaults(func=lambda args: engine.print_help() or 2)


def _mask(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def cmd_config(args) -> int:
    from crypto_ml.settings.engine import EngineConfig

    data = EngineConfig.from_env().as_dict()
    data["broker_url"] = _mask(data["broker_url"])
    data["result_backend"] = _mask(data["result_backend"])
    print(json.dumps(data, indent=1))
    return 0


def cmd_submit(args) -> int:
    from crypto_ml.engine.client import EngineTaskFailed, submit_predict, submit_train, wait
    from crypto_ml.engine.protocol import EngineInputError

    try:
        params = json.loads(args.params) if args.params else None
        if args.kind == "predict":
            task_id = submit_predict(
                coin=args.coin,
                as_of=args.as_of,
                model=args.model,
                horizon=args.horizon,
                version=args.version,
                params=params,
            )
        else:
            task_id = submit_train(coin=args.coin, as_of=args.as_of, model=args.model, params=params)
    except (EngineInputError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.no_wait:
        print(task_id)
        return 0
    try:
        print(json.dumps(wait(task_id, timeout=args.timeout), indent=1))
    except (EngineTaskFailed, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_status(args) -> int:
    from crypto_ml.engine.client import get_state

    state, value = get_state(args.task_id)
    if state == "PENDING":
        from crypto_ml.cli import CLIError

        raise CLIError(
            f"unknown task id {args.task_id!r}: the engine's result backend has no such task "
            "(never sent, or its result expired)",
            code=1,
        )
    print(json.dumps({"task_id": args.task_id, "state": state, "value": value}, indent=1, default=str))
    return 1 if state == "FAILURE" else 0


def cmd_stats(args) -> int:
    """The queues (:func:`crypto_ml.engine.monitor.queue_overview`), then one pool process's stats
    (a ``crypto_ml.stats`` task on ``predict``)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from crypto_ml.engine.app import app
    from crypto_ml.engine.monitor import format_overview, queue_overview

    overview = queue_overview(app, timeout=min(args.timeout, 5.0))
    if not args.json:
        print(format_overview(overview))
    try:
        process = app.send_task("crypto_ml.stats", queue="predict").get(timeout=args.timeout)
    except CeleryTimeout:
        print(
            f"error: no worker on the 'predict' queue answered crypto_ml.stats within {args.timeout:g} s",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps({"queues": overview, "process": process}, indent=1))
    else:
        print("\none pool process:\n" + json.dumps(process, indent=1))
    return 0
