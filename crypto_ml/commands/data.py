"""``crypto-ml summary | validate | ingest | db``: the data side of the command line.

Every data command says first what it reads (the source, or the market with where its setting
came from), names each coin that failed with the reason, and exits 1 when any coin failed."""

from __future__ import annotations

import argparse
import sys
import time

from crypto_ml.commands import iso_date, non_negative_int


def register(subparsers) -> None:
    def source_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--source",
            default=None,
            help="bundled (default), or a directory/zip/CSV file in the talk's per-coin format "
            "or the long format",
        )
        p.add_argument(
            "--market",
            default=None,
            help="read a market instead, as the pipeline does: a crypto_ml_market URI, e.g. "
            "'crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT' (default: "
            "$AIRFLOW_CONN_CRYPTO_ML_MARKET with 'env')",
        )
        p.add_argument(
            "--as-of", default=None, type=iso_date, help="point-in-time view: ignore rows after YYYY-MM-DD"
        )
        p.add_argument("--synthetic", type=non_negative_int, default=0, help="add N labelled synthetic coins")
        p.add_argument("--seed", type=int, default=0, help="seed of the synthetic coins")

    p = subparsers.add_parser(
        "summary",
        help="load and validate the data, print one line per coin",
        description="Load and validate prices from the bundled data, your CSV files (--source) or a "
        "market as the pipeline reads it (--market), and print one line per coin: first and last "
        "day, rows, last close, findings. Names every coin that failed to load; exit 1 if any did.",
    )
    source_args(p)
    p.add_argument("--coins", default=None, help="comma-separated coins (default: all)")
    p.set_defaults(func=cmd_summary)

    p = subparsers.add_parser(
        "validate",
        help="list every validation finding; exit 1 on errors",
        description="Load prices as `summary` does and list every validation error (with --warnings, "
        "every finding): the coin, the row and what is wrong. Exit 1 when a row is invalid or a coin "
        "failed to load.",
    )
    source_args(p)
    p.add_argument("--warnings", action="store_true", help="also list warnings")
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser(
        "ingest",
        help="load, validate and upsert prices (and quarantined rows) into the project DB",
        description="Load and validate prices as `summary` does, then upsert them into the project "
        "database, each coin in its own transaction (a re-run updates in place, inserts nothing "
        "twice); invalid rows go to the quarantine table. Exit 1 when a coin failed to load.",
    )
    source_args(p)
    p.add_argument("--db", default=None, help="database URL (default: $CRYPTO_ML_DATABASE_URL or SQLite)")
    p.add_argument("--quiet", action="store_true", help="no per-coin table")
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser(
        "db",
        help="project database: upgrade schema, show where it is",
        description="The project database (prices, predictions, models, trades): `upgrade` runs its "
        "migrations (Alembic), `url` prints which database the commands use and why.",
    )
    p.add_argument("action", choices=["upgrade", "url"], help="upgrade: migrate the schema; url: print it")
    p.add_argument(
        "--db",
        default=None,
        help="database URL (default: $CRYPTO_ML_DATABASE_URL, the "
        "crypto_ml_db Connection, else SQLite in AIRFLOW_HOME)",
    )
    p.set_defaults(func=cmd_db)


def market_from_arg(text: str):
    """The market of ``--market``: ``env`` is ``$AIRFLOW_CONN_CRYPTO_ML_MARKET`` (which must then
    be set), anything else a setting in the URI or JSON form, read by the one parser of the DAG
    parser and the tasks' hook."""
    import os

    from crypto_ml.markets import ENV_VAR, Market, MarketConfigError

    if text == "env":
        value = os.environ.get(ENV_VAR, "")
        if not value.strip():
            raise MarketConfigError(f"--market env: {ENV_VAR} is not set")
        return Market.from_env_value(value, origin=ENV_VAR)
    return Market.from_env_value(text, origin="--market")


def what_is_read(args) -> str:
    """The source a data command reads, in words (printed before it reads it)."""
    if getattr(args, "market", None):
        market = market_from_arg(args.market)
        return f"{market.describe()} [{market.source_name}; from {market.origin}]"
    return f"{args.source or 'bundled'} (--source)" + (
        f" + {args.synthetic} synthetic coins" if args.synthetic else ""
    )


def _load(args):
    from crypto_ml.data.loader import CryptoLoader

    started = time.perf_counter()
    source, as_of = args.source, args.as_of
    if getattr(args, "market", None):
        import datetime as dt

        if args.source:
            raise SystemExit("crypto-ml: give --source or --market, not both")
        market = market_from_arg(args.market)
        as_of = market.market_day(args.as_of or dt.datetime.now(dt.UTC).date())
        source = market.source(as_of)
    loader = CryptoLoader(source, as_of=as_of, synthetic=args.synthetic, seed=args.seed)
    return loader, time.perf_counter() - started


def report_coins(loader) -> int:
    """Print the coins that failed (named, with the reason), the history an exchange did not
    serve and the notes; the command's exit status: 1 when any coin failed."""
    source = loader.source
    for coin, text in (getattr(source, "limits", None) or {}).items():
        print(f"LIMITED {coin}: {text}")
    for coin, text in (getattr(source, "notes", None) or {}).items():
        print(f"NOTE {coin}: {text}")
    failed = loader.report.failed_coins
    for coin, reason in failed.items():
        print(f"FAILED {coin}: {reason}")
    if failed:
        print(f"{len(failed)} coins failed: {', '.join(failed)}")
    return 1 if failed else 0


def format_coins(table) -> str:
    """The per-coin table as text, synthetic coins flagged."""
    shown = table.copy()
    shown["last_close"] = shown["last_close"].map(lambda v: f"{v:.6g}")
    shown["synthetic"] = shown["synthetic"].map({True: "SYNTHETIC", False: ""})
    shown = shown.rename(columns={"synthetic": "kind"})
    return shown.to_string()


def cmd_summary(args) -> int:
    print(f"reading {what_is_read(args)} ...", flush=True)
    loader, seconds = _load(args)
    table = loader.coins()
    if args.coins:
        table = table.loc[[loader.resolve(c) for c in args.coins.split(",")]]
    print(format_coins(table))
    print(
        f"\n{len(loader)} coins ({int(table['synthetic'].sum())} synthetic) from {loader.source.name} "
        f"in {seconds:.2f} s: {loader.report}"
    )
    return report_coins(loader)


def cmd_validate(args) -> int:
    print(f"validating {what_is_read(args)} ...", flush=True)
    loader, _ = _load(args)
    shown = loader.report.findings if args.warnings else loader.report.errors
    for finding in shown:
        print(finding)
    failed = report_coins(loader)
    print(f"{loader.source.name}: {loader.report}")
    return 1 if loader.report.errors or failed else 0


def cmd_ingest(args) -> int:
    from tqdm import tqdm

    from crypto_ml import storage
    from crypto_ml.data.ingest import ingest

    url = storage.database_url(args.db)
    print(f"[1/3] project database: {_redact(url)}", flush=True)
    print(f"[2/3] loading and validating prices from {what_is_read(args)} ...", flush=True)
    loader, seconds = _load(args)
    print(f"      {len(loader)} coins in {seconds:.2f} s: {loader.report}", flush=True)
    with tqdm(
        total=len(loader.frame()),
        unit="row",
        desc="[3/3] storing",
        file=sys.stdout,
        disable=None,
        mininterval=0.5,
    ) as bar:
        result = ingest(loader=loader, url=url, progress=lambda coin, rows: bar.update(rows))
    if not args.quiet:
        print()
        print(format_coins(loader.coins()))
    print(f"\nfrom {result.source}: {result}")
    return 1 if result.failed_coins else 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_db(args) -> int:
    from crypto_ml import storage

    url = storage.database_url(args.db)
    if args.action == "url":
        print(_redact(url))
        return 0
    storage.migrate(url)
    print(f"{_redact(url)} is at revision {storage.current_revision(url)}")
    return 0
