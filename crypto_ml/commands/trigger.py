"""``crypto-ml trigger coin``: one coin's run, its run id naming the coin (``bitcoin__2017-06-05``).

``airflow dags trigger crypto_ml_coin --conf ...`` names a run ``manual__<time>``: Airflow makes
the id before it reads the conf, so the grid cannot say which coin a hand-made run is for. This
command builds the id the master's fan-out would (:func:`crypto_ml.pipeline.params.coin_run_id`:
``<coin>__<as_of>``, then ``__<model>`` and ``__h<horizon>`` when not the defaults; without
``--as-of``, ``<coin>__manual__<UTC time>``) and triggers the run through Airflow's own CLI, in
this shell's Airflow environment (``source scripts/env.sh``).
"""

from __future__ import annotations

import json
import sys

from crypto_ml.commands import iso_date, positive_int


def register(subparsers) -> None:
    from crypto_ml.pipeline.catalog import DEFAULT_MODEL, MODEL_NAMES

    p = subparsers.add_parser(
        "trigger",
        help="trigger a crypto_ml_coin run whose run id names the coin",
        description="Trigger one coin's crypto_ml_coin run through Airflow's CLI with a run id that "
        "names the coin, day, model and horizon (bitcoin__2017-06-05__drift), as the master's fan-out "
        "names its runs; `airflow dags trigger` alone names it manual__<time>.",
    )
    sub = p.add_subparsers(title="what to trigger", metavar="WHAT", required=True)
    coin = sub.add_parser("coin", help="one coin's run of crypto_ml_coin")
    coin.add_argument("coin", help="coin id, e.g. bitcoin or btc-usdt")
    coin.add_argument(
        "--as-of",
        type=iso_date,
        default=None,
        help="the run's day (YYYY-MM-DD; default: the market day of the run's logical date)",
    )
    coin.add_argument("--model", default=DEFAULT_MODEL, choices=list(MODEL_NAMES), help="model name")
    coin.add_argument("--horizon", type=positive_int, default=None, help="days to forecast (default: 10)")
    coin.set_defaults(func=cmd_trigger_coin)


def coin_trigger_command(
    coin: str, *, as_of: str | None, model: str, horizon: int | None, now=None
) -> list[str]:
    """The ``airflow dags trigger`` command of one coin's run, its run id naming the coin."""
    import datetime as dt
    from pathlib import Path

    from crypto_ml.pipeline.params import DEFAULT_HORIZON, coin_run_id

    conf = {"coin": coin, "model": model}
    if as_of:
        conf["as_of"] = as_of
    if horizon:
        conf["horizon"] = horizon
    if as_of:
        run_id = coin_run_id(coin, as_of, model=model, horizon=horizon or DEFAULT_HORIZON)
    else:
        when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S")
        run_id = coin_run_id(coin, f"manual__{when}", model=model, horizon=horizon or DEFAULT_HORIZON)
    airflow = Path(sys.executable).with_name("airflow")
    return [
        str(airflow) if airflow.exists() else "airflow",
        "dags",
        "trigger",
        "crypto_ml_coin",
        "--run-id",
        run_id,
        "--conf",
        json.dumps(conf),
    ]


def cmd_trigger_coin(args) -> int:
    import subprocess

    cmd = coin_trigger_command(args.coin, as_of=args.as_of, model=args.model, horizon=args.horizon)
    print("running: " + " ".join(cmd[1:3]) + " " + " ".join(cmd[3:]), flush=True)
    return subprocess.run(cmd).returncode
