"""Strategy backtest per market period: every shipped model x rule in a fall, a range and a rise.

Periods of the bundled history (``--periods`` to change them; inclusive windows):

- ``fall``  2014-03-01 .. 2015-02-28 (bitcoin -55 %, the 17 coins' equal-weight buy-and-hold -54 %);
- ``range`` 2015-03-01 .. 2015-10-31 (bitcoin between 200 and 320 USD);
- ``rise``  2016-09-23 .. 2017-09-22 (the bundled data's last year, the bubble).

Each period is replayed day by day with :func:`crypto_ml.evaluation.strategy.run_strategy` (point in time,
refit every 7 days and updated daily, 10 bps fee + 5 bps slippage per side, the risk module's caps
on a paper ledger), the four rules of :func:`crypto_ml.evaluation.strategy.default_rules` and models naive,
drift and ar (``--models``). The coins are the same in every period: those with a close on the
first period's first day (``--coins common``, 17 bundled coins), or ``--coins all`` / a list.
Data: the data commands' source options (``--source`` a CSV file or folder, ``--market``;
default the bundled data, never mixed in when another source is given).

Writes ``benchmarks/results/strategy_periods.md`` and ``.json`` (``--stem``): per period x model x
rule the return, Sharpe, maximum drawdown, hit rate, fees and the return against never trading
and against buy-and-hold, and whether the default configuration (naive, shipped rule) loses to
never trading.

    python benchmarks/bench_periods.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto_ml.commands.models import _source_flags, load_data, source_options  # noqa: E402
from crypto_ml.evaluation import markdown_table, run_strategy  # noqa: E402

PERIODS = "fall=2014-03-01:2015-02-28,range=2015-03-01:2015-10-31,rise=2016-09-23:2017-09-22"
#: The default configuration: the shipped default model and rule (TradingRules()).
DEFAULT = ("naive", "shipped")


def parse_periods(text: str) -> list[tuple[str, str, str]]:
    out = []
    for item in text.split(","):
        name, sep, window = item.partition("=")
        start, sep2, end = window.partition(":")
        if not (sep and sep2 and name and start and end):
            raise SystemExit(f"--periods: expected NAME=START:END, got {item!r}")
        out.append((name.strip(), start.strip(), end.strip()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], parents=[source_options()], conflict_handler="resolve"
    )
    parser.add_argument("--periods", default=PERIODS, help=f"NAME=START:END,... (default {PERIODS})")
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--coins", default="common", help="common (default), all, or a comma-separated list")
    parser.add_argument("--refit-every", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--stem", default="strategy_periods")
    args = parser.parse_args()
    periods = parse_periods(args.periods)
    args.end = max(end for _, _, end in periods)
    loader = load_data(args)
    if args.coins == "common":
        first = periods[0][1]
        frame = loader.frame(as_of=first)
        coins = sorted(frame.loc[frame["date"] == first, "coin"].unique())
        if not coins:
            raise SystemExit(f"no coin has a close on {first}, the first period's first day")
    elif args.coins == "all":
        coins = None
    else:
        coins = args.coins.split(",")
    models = args.models.split(",")
    rows, timings, runs = [], {}, {}
    began, cpu = time.perf_counter(), time.process_time()
    for name, start, end in periods:
        t0 = time.perf_counter()
        report = run_strategy(
            coins, models, loader=loader, start=start, end=end, refit_every=args.refit_every
        )
        timings[name] = round(time.perf_counter() - t0, 1)
        runs[name] = report.params
        report.write(args.out / f"{args.stem}_{name}", stem="strategy")
        for row in report.summary.to_dict("records"):
            rows.append({"period": name, "window": f"{start} .. {end}", **row})
        print(f"{name}: {timings[name]} s", flush=True)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    import pandas as pd

    table = pd.DataFrame(rows)
    shown = table[
        [
            "period",
            "model",
            "rule",
            "total_return",
            "sharpe",
            "max_drawdown",
            "hit_rate",
            "trades",
            "fees",
            "vs_no_trade",
            "vs_buy_and_hold",
        ]
    ].copy()
    for col in ("total_return", "max_drawdown", "hit_rate", "vs_no_trade", "vs_buy_and_hold"):
        shown[col] = shown[col].map(lambda v: "n/a" if not math.isfinite(v) else f"{v * 100:+.1f}%")
    shown["sharpe"] = shown["sharpe"].map(lambda v: "n/a" if not math.isfinite(v) else f"{v:.2f}")
    shown["fees"] = shown["fees"].map(lambda v: f"{v:,.0f}")
    verdicts = []
    for name, _, _ in periods:
        p = table[table["period"] == name]
        default = p[(p["model"] == DEFAULT[0]) & (p["rule"] == DEFAULT[1])]
        losers = p[(~p["model"].isin(["no-trade", "buy-and-hold"])) & (p["total_return"] < 0)]
        bh = float(p.loc[p["model"] == "buy-and-hold", "total_return"].iloc[0])
        if not default.empty:
            d = default.iloc[0]
            verdict = "loses to" if d["total_return"] < 0 else "does not lose to"
            verdicts.append(
                f"- **{name}**: the default (naive, shipped) {verdict} never trading "
                f"({d['total_return'] * 100:+.2f} %, {int(d['trades'])} trades); buy-and-hold "
                f"{bh * 100:+.1f} %; model x rule runs that lose money: "
                + (
                    ", ".join(
                        f"{r.model}/{r.rule} {r.total_return * 100:+.1f} %" for r in losers.itertuples()
                    )
                    or "none"
                )
            )
    command = (
        "python benchmarks/bench_periods.py" + _source_flags(args) + f" --periods {args.periods} "
        f"--models {args.models} --coins {args.coins} --refit-every {args.refit_every}"
    )
    first = next(iter(runs.values()))
    text = "\n".join(
        [
            "# Strategy backtest per period",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), shared; Python {platform.python_version()}. "
            f"Wall time {elapsed:.0f} s (per period: "
            + ", ".join(f"{k} {v} s" for k, v in timings.items())
            + f"), CPU {cpu:.0f} s.",
            "",
            f"{first['coins']} coins ({'the same in every period: those with a close on ' + periods[0][1] if args.coins == 'common' else args.coins}), "
            f"horizon {first['horizon']} days, refit every {first['refit_every']} days and updated daily, capital "
            f"{first['capital']:,.0f} USD, {first['fee_bps']:g} bps fee + {first['slippage_bps']:g} bps slippage per side; "
            "per coin at most 5,000 USD and in all at most 20,000 USD at market value, never more than the cash. "
            "Rules: " + "; ".join(f"`{k}` = {v}" for k, v in first["rules"].items()) + ".",
            "",
            "Windows: " + "; ".join(f"{n} {s} .. {e}" for n, s, e in periods) + ".",
            "",
            markdown_table(shown),
            "",
            "## Verdicts",
            "",
            *verdicts,
            "",
            f"Per-period reports (equity plot, orders, per coin): `{args.stem}_<period>/`.",
        ]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.md").write_text(text + "\n")
    (args.out / f"{args.stem}.json").write_text(
        json.dumps(
            {
                "command": command,
                "seconds": round(elapsed, 1),
                "periods": [dict(zip(("name", "start", "end"), p)) for p in periods],
                "coins": coins,
                "rows": table.to_dict("records"),
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
