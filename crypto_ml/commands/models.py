"""``crypto-ml backtest`` and ``crypto-ml predict``: forecasters from the command line.

Examples::

    crypto-ml backtest --coins bitcoin,ethereum --models naive,linear,lstm --folds 12
    crypto-ml backtest --coins all --models naive,linear,lstm --param lstm.epochs=4 --out reports/
    crypto-ml predict --coins bitcoin,ethereum --model linear
    crypto-ml backtest --strategy --coins all --models naive,drift,ar --period 365   # the trading rule
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from crypto_ml.commands import iso_date, positive_int


def _csv(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _param(value: str) -> tuple[str, str, object]:
    """``model.name=value`` (value parsed as JSON when possible, e.g. ``lstm.units=[8,8]``)."""
    key, sep, raw = value.partition("=")
    model, dot, name = key.partition(".")
    if not sep or not dot or not model or not name:
        raise argparse.ArgumentTypeError(f"expected MODEL.PARAM=VALUE, got {value!r}")
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        parsed = raw
    if isinstance(parsed, list):
        parsed = tuple(parsed)
    return model.strip().lower(), name.strip(), parsed


def _params(items: list[tuple[str, str, object]] | None) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for model, name, value in items or []:
        out.setdefault(model, {})[name] = value
    return out


def _levels(value: str) -> tuple[float, ...]:
    from crypto_ml.forecasting import check_levels

    try:
        return check_levels([float(v) for v in _csv(value)])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _coins(loader, value: list[str] | None) -> list[str] | None:
    if value is None or [v.lower() for v in value] == ["all"]:
        return None if value is None else loader.get_crypto_names()
    return value


def source_options() -> argparse.ArgumentParser:
    """The data commands' source options, as a parent parser: ``--source``, ``--market``,
    ``--as-of``, ``--synthetic`` and ``--seed``, taken from ``crypto-ml summary``'s own parser
    (:mod:`crypto_ml.commands.data`), so the backtests and the benchmark scripts read data exactly
    as the data commands do. A parser that uses it must pass ``conflict_handler="resolve"`` (it
    brings ``-h`` and ``--coins``, which the child's own replace)."""
    from crypto_ml.commands import data

    holder = argparse.ArgumentParser(add_help=False)
    subs = holder.add_subparsers()
    data.register(subs)
    return subs.choices["summary"]


def window_options(parser: argparse.ArgumentParser) -> None:
    """``--start`` / ``--end``: the backtest's window (inclusive)."""
    parser.add_argument(
        "--start",
        type=iso_date,
        default=None,
        help="first day of the test window, YYYY-MM-DD (default: PERIOD days before --end)",
    )
    parser.add_argument(
        "--end",
        type=iso_date,
        default=None,
        help="last day of the test window, YYYY-MM-DD (default: the last close); nothing after it is read",
    )


def load_data(args: argparse.Namespace):
    """The loader of the source options (the data commands' own loading), cut at ``--end``: a
    point-in-time view, nothing after the window is read."""
    from crypto_ml.cli import CLIError
    from crypto_ml.commands.data import _load

    end, as_of = getattr(args, "end", None), args.as_of
    if end is not None and as_of is not None and end > as_of:
        raise CLIError(f"--end {end} is after --as-of {as_of}: the window would read closes the view hides")
    start = getattr(args, "start", None)
    if start is not None and end is not None and end <= start:
        raise CLIError(f"--end {end} must be after --start {start}")
    loader, _ = _load(argparse.Namespace(**{**vars(args), "as_of": end or as_of}))
    if not len(loader):
        raise CLIError(
            f"no coin has data in {args.source or args.market or 'the bundled data'}"
            + (f" on or before {end or as_of}" if end or as_of else "")
        )
    return loader


def register(subparsers: argparse._SubParsersAction) -> None:
    from crypto_ml.pipeline.catalog import DEFAULT_MODEL  # cheap: --help in a blink
    from crypto_ml.pipeline.catalog import MODEL_NAMES as MODELS

    names = ", ".join(MODELS)
    bt = subparsers.add_parser(
        "backtest",
        help="walk-forward backtest of forecasters on coins",
        description="Walk-forward backtest (expanding window) of forecasters over each coin's last "
        "PERIOD days, or the days from --start to --end, of any source the data commands read "
        "(--source, --market): prints a metrics table and writes a PNG and a CSV of per-fold metrics.",
        parents=[source_options()],
        conflict_handler="resolve",
    )
    bt.add_argument("--coins", type=_csv, default=["bitcoin"], help="comma-separated coins, or 'all'")
    bt.add_argument("--models", type=_csv, default=["naive", "linear"], help=f"comma-separated: {names}")
    bt.add_argument(
        "--period",
        type=positive_int,
        default=None,
        help="test period in days (default 365; not with --start)",
    )
    window_options(bt)
    bt.add_argument("--folds", type=positive_int, default=12, help="folds in the test period (default 12)")
    bt.add_argument("--horizon", type=positive_int, default=10, help="days forecast per fold (default 10)")
    bt.add_argument(
        "--param",
        type=_param,
        action="append",
        metavar="MODEL.PARAM=VALUE",
        help="a model hyperparameter, e.g. lstm.epochs=4 (repeatable)",
    )
    bt.add_argument("--out", type=Path, default=None, help="output folder (default: artifacts 'backtests')")
    bt.add_argument("--report", type=Path, default=None, help="also write the Markdown report here")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar")
    bt.add_argument(
        "--on",
        choices=("process", "local", "engine"),
        default="process",
        help="where the backtest (or --strategy's forecasts) runs: 'process' (default, here), 'local' (the "
        "engine's units, here), 'engine' (one task per coin and model on the engine's 'heavy' queue, "
        "which every shipped worker consumes; a re-run computes only the units not done yet)",
    )
    bt.add_argument(
        "--levels",
        type=_levels,
        default=None,
        help="prediction-interval levels in percent, comma-separated (default 80,95)",
    )
    strat = bt.add_argument_group(
        "strategy backtest (--strategy)",
        "Replay the trading rule day by day over the last PERIOD days: forecast from data up to "
        "each day, decide with the DAG's rule, execute on a throw-away paper ledger, mark to "
        "market; writes a Markdown report, an equity PNG, a CSV of every order and per-coin CSV.",
    )
    strat.add_argument("--strategy", action="store_true", help="run the strategy backtest")
    strat.add_argument(
        "--rules",
        type=_csv,
        default=None,
        help="rules to compare (default all): shipped, point-net, interval80, interval95",
    )
    strat.add_argument("--threshold", type=float, default=0.02, help="rule threshold (default 0.02 = 2%%)")
    strat.add_argument("--fee-bps", type=float, default=10.0, help="fee per side, basis points (default 10)")
    strat.add_argument("--slippage-bps", type=float, default=5.0, help="slippage per side, bps (default 5)")
    strat.add_argument(
        "--refit-every", type=int, default=7, help="refit every N days, update daily (default 7)"
    )
    bt.set_defaults(func=backtest_command)

    pr = subparsers.add_parser(
        "predict",
        help="forecast the next days' closes (the talk's output)",
        description="Forecast the next HORIZON closes per coin with CryptoManager (stored models "
        "are reused when trained on the same data; otherwise a model is trained and saved).",
    )
    pr.add_argument("--coins", type=_csv, default=None, help="comma-separated coins, or 'all' (default)")
    pr.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        type=str.lower,
        choices=list(MODELS),
        help=f"one of {names} (default {DEFAULT_MODEL})",
    )
    pr.add_argument("--horizon", type=positive_int, default=10, help="days to forecast (default 10)")
    pr.add_argument("--as-of", default=None, type=iso_date, help="forecast from this day's data (YYYY-MM-DD)")
    pr.add_argument("--no-store", action="store_true", help="do not read or write the model store")
    pr.add_argument(
        "--talk",
        action="store_true",
        help="print as the talk did, one line per coin: bitcoin [[4952.28 5492.85 ...]]",
    )
    pr.add_argument(
        "--param",
        type=_param,
        action="append",
        metavar="MODEL.PARAM=VALUE",
        help="a model hyperparameter, e.g. ar.lags=5 (repeatable)",
    )
    pr.set_defaults(func=predict_command)


def backtest_command(args: argparse.Namespace) -> int:
    from crypto_ml.data.loader import UnknownCoinError
    from crypto_ml.evaluation import format_report, plot_forecasts, run_backtest
    from crypto_ml.evaluation.units import BacktestSpec
    from crypto_ml.forecasting import DEFAULT_LEVELS
    from crypto_ml.forecasting.registry import MODEL_NAMES as MODELS
    from crypto_ml.settings.paths import artifacts_dir

    unknown = [m for m in args.models if m.lower() not in MODELS]
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if args.period is not None and args.start is not None:
        print("error: give --period or --start, not both", file=sys.stderr)
        return 2
    if getattr(args, "strategy", False):
        return strategy_command(args)
    levels = args.levels or DEFAULT_LEVELS
    period = args.period or 365
    loader = load_data(args)
    coins = _coins(loader, args.coins)
    started = time.perf_counter()
    on = getattr(args, "on", "process")
    spec = BacktestSpec(
        coins,
        [m.lower() for m in args.models],
        period=period,
        folds=args.folds,
        horizon=args.horizon,
        params=_params(args.param),
        levels=levels,
        start=args.start,
        end=args.end,
    )
    try:
        if on == "process":
            result = run_backtest(**spec.arguments(), loader=loader, progress=not args.no_progress)
        else:
            from crypto_ml.engine.heavy import run_backtest_distributed

            result = run_backtest_distributed(spec, loader=loader, where=on, progress=not args.no_progress)
    except (UnknownCoinError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    out = args.out or artifacts_dir("backtests")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"backtest_{_window_stem(args, period)}_{args.folds}f_{args.horizon}h"
    csv_path = out / f"{stem}_folds.csv"
    result.folds.to_csv(csv_path, index=False)
    png_path = plot_forecasts(result, out / f"{stem}.png")
    params = _params(args.param)
    report = format_report(result)
    header = (
        f"Command: crypto-ml backtest{_source_flags(args)} --coins {','.join(args.coins)} "
        f"--models {','.join(args.models)}{_window_flags(args, period)} --folds {args.folds} "
        f"--horizon {args.horizon}"
        + (f" --levels {','.join(f'{v:g}' for v in levels)}" if args.levels else "")
        + "".join(f" --param {m}.{k}={json.dumps(v)}" for m, kv in params.items() for k, v in kv.items())
        + (f" --on {on}" if on != "process" else "")
        + f"\nElapsed: {elapsed:.0f} s\n"
    )
    _publish(
        args.report,
        "Backtest report",
        f"{header}\n{report}",
        {"per-fold metrics": csv_path, "plot": png_path},
    )
    return 0


def strategy_command(args: argparse.Namespace) -> int:
    """``crypto-ml backtest --strategy``: the trading rule replayed day by day
    (crypto_ml.evaluation.strategy)."""
    from crypto_ml.data.loader import UnknownCoinError
    from crypto_ml.evaluation import default_rules, format_strategy_report, run_strategy
    from crypto_ml.forecasting import DEFAULT_LEVELS
    from crypto_ml.settings.paths import artifacts_dir

    every = default_rules(args.fee_bps, args.slippage_bps, args.threshold)
    names = args.rules or list(every)
    unknown = [r for r in names if r not in every]
    if unknown:
        print(f"unknown rule(s) {', '.join(unknown)}; valid: {', '.join(every)}", file=sys.stderr)
        return 2
    loader = load_data(args)
    coins = _coins(loader, args.coins)
    period = None if args.start is not None else (args.period or 365)
    started = time.perf_counter()
    on = getattr(args, "on", "process")
    run = run_strategy
    if on != "process":
        from functools import partial

        from crypto_ml.engine.heavy import run_strategy_distributed

        run = partial(run_strategy_distributed, where=on)
    try:
        report = run(
            coins,
            [m.lower() for m in args.models],
            {name: every[name] for name in names},
            loader=loader,
            days=period,
            start=args.start,
            end=args.end,
            horizon=args.horizon,
            levels=args.levels or DEFAULT_LEVELS,
            refit_every=args.refit_every,
            fee_bps=args.fee_bps,
            slippage_bps=args.slippage_bps,
            params=_params(args.param),
            progress=not args.no_progress,
        )
    except (UnknownCoinError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    out = args.out or artifacts_dir("backtests")
    stem = f"strategy_{_window_stem(args, period)}_{args.horizon}h"
    paths = report.write(out, stem=stem)
    command = (
        f"crypto-ml backtest --strategy{_source_flags(args)} --coins {','.join(args.coins)} "
        f"--models {','.join(args.models)}{_window_flags(args, period)} --horizon {args.horizon} "
        f"--rules {','.join(names)} "
        f"--threshold {args.threshold:g} --fee-bps {args.fee_bps:g} --slippage-bps {args.slippage_bps:g} "
        f"--refit-every {args.refit_every}" + (f" --on {on}" if on != "process" else "")
    )
    text = f"Command: {command}\nElapsed: {elapsed:.0f} s\n\n{format_strategy_report(report)}"
    _publish(
        args.report,
        "Strategy backtest",
        text,
        {"equity plot": paths["plot"], "orders": paths["orders"], "per coin": paths["per_coin"]},
        footer=f"\nEquity plot: {paths['plot']}\n",
    )
    return 0


def _source_flags(args: argparse.Namespace) -> str:
    """The source options as given, for the report's command line."""
    flags = ""
    for name in ("source", "market", "as_of"):
        value = getattr(args, name, None)
        if value:
            flags += f" --{name.replace('_', '-')} {value}"
    if getattr(args, "synthetic", 0):
        flags += f" --synthetic {args.synthetic} --seed {args.seed}"
    return flags


def _window_flags(args: argparse.Namespace, period: int | None) -> str:
    flags = f" --start {args.start}" if args.start is not None else f" --period {period}"
    return flags + (f" --end {args.end}" if args.end is not None else "")


def _window_stem(args: argparse.Namespace, period: int | None) -> str:
    if args.start is not None:
        return f"{args.start}_{args.end or 'last'}"
    return f"{period}d" + (f"_to_{args.end}" if args.end is not None else "")


def _publish(report: Path | None, title: str, text: str, files: dict[str, Path], footer: str = "") -> None:
    """Print a backtest's ``text`` and the ``files`` it wrote; also write it as markdown to ``report``
    (``--report``) under ``# title``."""
    print(text)
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(f"# {title}\n\n{text}\n{footer}")
    print("\n" + "\n".join(f"{name}: {path}" for name, path in files.items()))


def _print_prediction_table(manager, coins) -> None:
    """The forecasts as a table: per coin and day the forecast and its 80 % / 95 % intervals."""
    from crypto_ml.storage.reporting import format_table

    table = manager.prediction_table(coins)
    if len(table):
        print(format_table(table.drop(columns="note").fillna("-")))
        for coin, note in table.loc[table["note"] != "", ["coin", "note"]].itertuples(index=False):
            print(f"{coin}: no interval: {note}")
    for coin, reason in manager.skipped.items():
        print(f"{coin} skipped: {reason}")


def predict_command(args: argparse.Namespace) -> int:
    from crypto_ml.data.loader import CryptoLoader, UnknownCoinError
    from crypto_ml.forecasting.manager import CryptoManager

    loader = CryptoLoader(as_of=args.as_of)
    if not len(loader):
        first = CryptoLoader().frame()["date"].min().date()
        from crypto_ml.cli import CLIError

        raise CLIError(f"no coin has data on or before {args.as_of}: the data starts on {first}")
    params = _params(args.param).get(args.model.lower(), {})
    try:
        manager = CryptoManager(
            loader=loader,
            model=args.model,
            horizon=args.horizon,
            store=False if args.no_store else None,
            as_of=args.as_of,
            params=params,
        )
        coins = _coins(loader, args.coins)
        if coins is not None:
            coins = [loader.resolve(c) for c in coins]  # a coin named by hand must exist
        if args.talk:
            manager.print_predictions(coins)
        else:
            _print_prediction_table(manager, coins)
    except (UnknownCoinError, ValueError) as exc:
        from crypto_ml.cli import CLIError

        raise CLIError(str(exc)) from None  # one error style: crypto-ml predict: error: ...
    return 0
