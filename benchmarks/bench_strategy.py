"""Strategy backtest of the shipped models and rules, timed (default: the bundled data's last year).

Every coin's last 365 days (bundled: 2016-09-23 .. 2017-09-22; ``--start``/``--end``/``--days`` for
another window), models naive, drift and ar (``--models`` adds lstm, which is optional and slow),
the four rules of :func:`crypto_ml.evaluation.strategy.default_rules`, 10 bps fee + 5 bps slippage per side.
Data: the data commands' source options (``--source`` a CSV file or folder, ``--market``; default
the bundled data, never mixed in when another source is given). Writes
``benchmarks/results/strategy.md`` (the command, the table, per-part timings, the horizon
coverage of the intervals), the equity plot ``benchmarks/results/strategy_equity.png`` and the
orders and per-coin CSVs next to them.

    python benchmarks/bench_strategy.py
    python benchmarks/bench_strategy.py --source history.csv --start 2018-01-01 --end 2018-12-31 --stem s2018
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto_ml.commands.models import _source_flags, load_data, source_options, window_options  # noqa: E402
from crypto_ml.evaluation import format_strategy_report, interval_score, markdown_table, run_strategy  # noqa: E402


def horizon_coverage(report, horizon: int = 10):
    """Per model and level: the share of horizon-end closes inside the interval the replay's
    forecasts gave for them (refit every ``--refit-every`` days, updated daily), and the mean and
    median width and the mean Winkler interval score in % of the last close. The closes are the
    report's own (``report.prices``, what the replay read); a day whose horizon end is after the
    window, or on a day without a close, is not scored and counted in ``not_scored``."""
    import numpy as np
    import pandas as pd

    f = report.forecasts
    if f.empty:
        return pd.DataFrame()
    closes = report.prices
    f = f.copy()
    f["actual"] = [
        float(closes.at[d + pd.Timedelta(days=horizon), c])
        if (d + pd.Timedelta(days=horizon)) in closes.index
        else np.nan
        for c, d in zip(f["coin"], f["date"])
    ]
    rows = []
    for key in sorted(c[len("lower_") :] for c in f.columns if c.startswith("lower_")):
        for model, g in f.groupby("model", sort=False):
            unscored = int(g["actual"].isna().sum())
            g = g.dropna(subset=["actual", f"lower_{key}", f"upper_{key}"])
            if g.empty:
                continue
            lo, hi = g[f"lower_{key}"], g[f"upper_{key}"]
            width = (hi - lo) / g["last_close"] * 100
            rows.append(
                {
                    "model": model,
                    "level": key,
                    "n_coins": g["coin"].nunique(),
                    "n": len(g),
                    "not_scored": unscored,
                    "coverage": round(float(((g["actual"] >= lo) & (g["actual"] <= hi)).mean() * 100), 1),
                    "mean_width_pct": round(float(width.mean()), 1),
                    "median_width_pct": round(float(width.median()), 1),
                    "interval_score_pct": round(
                        float(
                            np.mean(
                                interval_score(lo, hi, g["actual"], float(key)) / g["last_close"].to_numpy()
                            )
                            * 100
                        ),
                        1,
                    ),
                    "miss_below": round(float((g["actual"] < lo).mean() * 100), 1),
                    "miss_above": round(float((g["actual"] > hi).mean() * 100), 1),
                }
            )
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], parents=[source_options()], conflict_handler="resolve"
    )
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument(
        "--days", type=int, default=None, help="window length (default 365; not with --start)"
    )
    window_options(parser)
    parser.add_argument("--coins", default="all")
    parser.add_argument("--refit-every", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--stem", default="strategy")
    args = parser.parse_args()
    coins = None if args.coins == "all" else args.coins.split(",")
    if args.days is not None and args.start is not None:
        parser.error("give --days or --start, not both")
    days = args.days if args.days is not None or args.start is not None else 365
    loader = load_data(args)
    started, cpu = time.perf_counter(), time.process_time()
    report = run_strategy(
        coins,
        args.models.split(","),
        loader=loader,
        days=days,
        start=args.start,
        end=args.end,
        refit_every=args.refit_every,
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    load = os.getloadavg()[0]
    paths = report.write(args.out, stem=args.stem)
    window = (f" --start {args.start}" if args.start else f" --days {days}") + (
        f" --end {args.end}" if args.end else ""
    )
    command = (
        f"python benchmarks/bench_strategy.py{_source_flags(args)} --models {args.models}{window} "
        f"--coins {args.coins} --refit-every {args.refit_every} --stem {args.stem}"
    )
    text = "\n".join(
        [
            f"# Strategy backtest: {args.models} on {report.params['coins']} coins, "
            f"{report.params['start']} .. {report.params['end']}",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), shared with other work; "
            f"Python {platform.python_version()}. **Total wall time: {elapsed:.0f} s, CPU time of the "
            f"process {cpu:.0f} s** (one process, one core; load average {load:.1f} at the end, so the "
            "wall time includes waiting for the CPU). Timings below are wall times.",
            "",
            format_strategy_report(report),
            "",
            f"Interval coverage of the close {10} days after each replayed day (the horizon the rule looks "
            "at; "
            "models refitted as above and updated daily, intervals from that fit's calibration):",
            "",
            markdown_table(horizon_coverage(report)),
            "",
            "Equity plot: "
            f"`{paths['plot'].relative_to(ROOT) if paths['plot'].is_relative_to(ROOT) else paths['plot']}`; "
            f"orders: `{paths['orders'].name}` ({len(report.orders)} rows); per coin: "
            f"`{paths['per_coin'].name}`.",
        ]
    )
    paths["report"].write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
