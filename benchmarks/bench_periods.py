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

Besides the four rules, each model has a **gated** row: the shipped rule traded only with the
versions the promotion gate (:mod:`crypto_ml.evaluation.promotion`, its default margins, naive /
no-trade as the champion) would promote. Every ``--gate-every`` days (default 28: the strategy
refits weekly, and one point-in-time evaluation costs about a second) each coin's version is
evaluated on the 90 days before it (:func:`~crypto_ml.evaluation.promotion.evaluate_version`,
closes up to that day only) and :func:`~crypto_ml.evaluation.promotion.verdict` decides; until the
next evaluation, days of a rejected version store the prediction and trade nothing (held coins
stay held, as in the pipeline), days of a promoted one trade with the shipped rule.

Writes ``benchmarks/results/strategy_periods.md`` and ``.json`` (``--stem``): per period x model x
rule the return, Sharpe, maximum drawdown, hit rate, fees and the return against never trading
and against buy-and-hold, whether the default configuration (naive, shipped rule) and the gated
rows lose to never trading, and the gate's verdicts (promoted evaluations per model and period).

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
from crypto_ml.evaluation.strategy import default_rules  # noqa: E402

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


def gate_days(report, model: str, series: dict, every: int) -> tuple[dict, list[dict]]:
    """``model``'s forecasts of ``report`` kept only on the days its version would be promoted:
    per coin, the gate evaluated every ``every`` days from the first forecast day (closes up to
    that day, :func:`evaluate_version` then :func:`verdict`, default settings), its verdict holding
    until the next. Returns ``({coin: forecast rows kept}, [verdict rows])``."""
    import pandas as pd

    from crypto_ml.evaluation.promotion import PromotionSettings, evaluate_version, verdict

    settings = PromotionSettings()
    frame = report.forecasts[report.forecasts["model"] == model]
    kept, verdicts = {}, []
    for coin, rows in frame.groupby("coin"):
        closes, dates = series[coin]
        days = pd.DatetimeIndex(rows["date"])
        checks = pd.date_range(days.min(), days.max(), freq=f"{every}D")
        promoted = pd.Series(False, index=rows.index)
        for i, day in enumerate(checks):
            decided = mase_screen(coin, model, day, closes, dates, settings)
            if decided is None:
                ev = evaluate_version(coin, model, day.date().isoformat(), closes, dates, days=settings.days)
                decided = verdict(ev, settings)
            verdicts.append({"model": model, "coin": coin, "day": day.date().isoformat(), **decided})
            until = checks[i + 1] if i + 1 < len(checks) else days.max() + pd.Timedelta(days=1)
            if decided["status"] == "promoted":
                promoted |= (days >= day) & (days < until)
        if promoted.any():
            kept[coin] = rows[promoted.to_numpy()].drop(columns="model")
    return kept, verdicts


def mase_screen(coin: str, model: str, day, closes: list[float], dates: list[str], settings) -> dict | None:
    """The gate's verdict when the version fails its first test, MASE against naive, which alone
    rejects it (:func:`~crypto_ml.evaluation.promotion.verdict`); None when it passes or cannot be
    screened (then the full evaluation decides). The same point forecasts as
    :func:`~crypto_ml.evaluation.promotion.evaluate_version` (fitted once on the closes up to the
    window's first day, moved on daily with ``update``) without the intervals and the ledger
    replay, which cost most of its second."""
    import numpy as np

    from crypto_ml.forecasting import make_forecaster

    horizon, days = 10, settings.days
    stop = int(np.searchsorted(np.asarray(dates), day.date().isoformat(), side="right"))
    y = np.asarray(closes[:stop], dtype="float64")
    if len(y) < days + 30:
        return None
    start = len(y) - days
    fitted = make_forecaster(model)
    try:
        fitted._fit_point(y[: start + 1])
        errors, naive = [], []
        for i in range(start, len(y) - horizon):
            if i > start:
                fitted.update(y[: i + 1])
            errors.append(abs(fitted.predict(horizon)[-1] - y[i + horizon]))
            naive.append(abs(y[i] - y[i + horizon]))
    except ValueError:
        return None
    if not errors or not np.mean(naive) > 0:
        return None
    ratio = float(np.mean(errors) / np.mean(naive))
    need = 1.0 - settings.mase_margin
    if ratio <= need:
        return None
    return {
        "status": "rejected",
        "reason": f"not promoted: MASE {ratio:.2f}× naive (needs <= {need:.2f}×) (screened: later tests "
        "not run)",
    }


def gated_rows(report, models: list[str], series: dict, every: int, period: str) -> tuple[list, list]:
    """The gated summary row of each model (the shipped rule on the promoted days only) and the
    gate's verdicts."""
    from crypto_ml.evaluation.metrics import simulation_metrics
    from crypto_ml.evaluation.simulation import simulate

    p = report.params
    rule = default_rules(p["fee_bps"], p["slippage_bps"])[DEFAULT[1]]
    bh = float(report.summary.loc[report.summary["model"] == "buy-and-hold", "total_return"].iloc[0])
    rows, verdicts = [], []
    for model in models:
        kept, seen = gate_days(report, model, series, every)
        verdicts += [{"period": period, **v} for v in seen]
        sim = simulate(
            kept,
            report.prices,
            rule,
            model=model,
            rule="gated",
            horizon=p["horizon"],
            fee_bps=p["fee_bps"],
            slippage_bps=p["slippage_bps"],
        )
        overall, _ = simulation_metrics(sim, rule.max_position_notional)
        rows.append(
            {
                "model": model,
                "rule": "gated",
                "rule_detail": f"{DEFAULT[1]}, promoted versions only",
                **overall,
                "vs_buy_and_hold": overall["total_return"] - bh,
                "vs_no_trade": overall["total_return"],
            }
        )
    return rows, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], parents=[source_options()], conflict_handler="resolve"
    )
    parser.add_argument("--periods", default=PERIODS, help=f"NAME=START:END,... (default {PERIODS})")
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--coins", default="common", help="common (default), all, or a comma-separated list")
    parser.add_argument("--refit-every", type=int, default=7)
    parser.add_argument(
        "--gate-every",
        type=int,
        default=28,
        help="days between the promotion gate's evaluations of each coin's version (default 28)",
    )
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
    if args.gate_every < 1:
        raise SystemExit(f"--gate-every must be >= 1 day, got {args.gate_every}")
    rows, timings, runs, verdicts = [], {}, {}, []
    began, cpu = time.perf_counter(), time.process_time()
    for name, start, end in periods:
        t0 = time.perf_counter()
        report = run_strategy(
            coins, models, loader=loader, start=start, end=end, refit_every=args.refit_every
        )
        timings[name] = round(time.perf_counter() - t0, 1)
        runs[name] = report.params
        report.write(args.out / f"{args.stem}_{name}", stem="strategy")
        t1 = time.perf_counter()
        series = {c: _closes(loader, c, end) for c in report.prices.columns}
        gated, seen = gated_rows(report, models, series, args.gate_every, name)
        verdicts += seen
        timings[f"{name} gate"] = round(time.perf_counter() - t1, 1)
        summary = report.summary.to_dict("records")
        for row in summary[:-2] + gated + summary[-2:]:  # buy-and-hold and no-trade last
            rows.append({"period": name, "window": f"{start} .. {end}", **row})
        print(f"{name}: {timings[name]} s, gate {timings[name + ' gate']} s", flush=True)
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
    coins_note = (
        f"the same in every period: those with a close on {periods[0][1]}"
        if args.coins == "common"
        else args.coins
    )
    lines = []
    for name, _, _ in periods:
        p = table[table["period"] == name]
        default = p[(p["model"] == DEFAULT[0]) & (p["rule"] == DEFAULT[1])]
        losers = p[(~p["model"].isin(["no-trade", "buy-and-hold"])) & (p["total_return"] < 0)]
        gated = p[p["rule"] == "gated"]
        gate_losers = gated[gated["total_return"] < 0]
        bh = float(p.loc[p["model"] == "buy-and-hold", "total_return"].iloc[0])
        if not default.empty:
            d = default.iloc[0]
            verdict = "loses to" if d["total_return"] < 0 else "does not lose to"
            lines.append(
                f"- **{name}**: the default (naive, shipped) {verdict} never trading "
                f"({d['total_return'] * 100:+.2f} %, {int(d['trades'])} trades); buy-and-hold "
                f"{bh * 100:+.1f} %; model x rule runs that lose money: "
                + (
                    ", ".join(
                        f"{r.model}/{r.rule} {r.total_return * 100:+.1f} %" for r in losers.itertuples()
                    )
                    or "none"
                )
                + "; gated rows: "
                + (
                    "none loses to never trading"
                    if gate_losers.empty
                    else "lose to never trading: "
                    + ", ".join(f"{r.model} {r.total_return * 100:+.1f} %" for r in gate_losers.itertuples())
                )
                + " ("
                + ", ".join(
                    f"{r.model} {r.total_return * 100:+.1f} % in {int(r.trades)} trades"
                    for r in gated.itertuples()
                )
                + ")"
            )
    gate = pd.DataFrame(verdicts)
    promoted = (
        gate.assign(promoted=gate["status"] == "promoted")
        .groupby(["period", "model"], sort=False)
        .agg(evaluations=("status", "size"), promoted=("promoted", "sum"))
        .reset_index()
    )
    first_promoted = gate[gate["status"] == "promoted"].groupby(["period", "model"])["day"].min()
    promoted["first_promoted"] = [first_promoted.get((r.period, r.model), "-") for r in promoted.itertuples()]
    reasons = (
        gate[gate["status"] != "promoted"]["reason"]
        .str.replace(r"not promoted: ", "", regex=False)
        .str.split("; ")
        .explode()
        .str.extract(r"^(MASE|return|drawdown|\d+% coverage|no evaluation)")[0]
        .value_counts()
    )
    command = (
        "python benchmarks/bench_periods.py" + _source_flags(args) + f" --periods {args.periods} "
        f"--models {args.models} --coins {args.coins} --refit-every {args.refit_every} "
        f"--gate-every {args.gate_every}"
    )
    first = next(iter(runs.values()))
    text = "\n".join(
        [
            "# Strategy backtest per period",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} cores ({platform.machine()}), shared; Python "
            f"{platform.python_version()}. "
            f"Wall time {elapsed:.0f} s (per period: "
            + ", ".join(f"{k} {v} s" for k, v in timings.items())
            + f"), CPU {cpu:.0f} s.",
            "",
            f"{first['coins']} coins ({coins_note}), "
            f"horizon {first['horizon']} days, refit every {first['refit_every']} days and updated daily, "
            "capital "
            f"{first['capital']:,.0f} USD, {first['fee_bps']:g} bps fee + {first['slippage_bps']:g} bps "
            "slippage per side; "
            "per coin at most 5,000 USD and in all at most 20,000 USD at market value, never more than the "
            "cash. "
            "Rules: " + "; ".join(f"`{k}` = {v}" for k, v in first["rules"].items()) + ".",
            "",
            "Windows: " + "; ".join(f"{n} {s} .. {e}" for n, s, e in periods) + ".",
            "",
            markdown_table(shown),
            "",
            (
                "`gated` = the shipped rule on the days the coin's version is promoted by the promotion gate "
                f"(evaluated every {args.gate_every} days per coin on the 90 days before, default margins; "
                "otherwise the prediction is stored and nothing traded)."
            ),
            "",
            "## Verdicts",
            "",
            *lines,
            "",
            "## The promotion gate: evaluations per period and model, how many promoted, the first "
            "promoted day",
            "",
            markdown_table(promoted),
            "",
            "Failed tests among the rejected evaluations (one evaluation can fail several): "
            + ", ".join(f"{k} {v}" for k, v in reasons.items())
            + ".",
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
                "gate": verdicts,
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    print(text)
    return 0


def _closes(loader, coin: str, end: str) -> tuple[list[float], list[str]]:
    """``coin``'s closes and ISO days up to ``end`` (the gate reads only up to each evaluation day)."""
    closes, dates = loader.get_prices(coin)
    days = [str(d)[:10] for d in dates]
    keep = [i for i, d in enumerate(days) if d <= end]
    return [float(closes[i]) for i in keep], [days[i] for i in keep]


if __name__ == "__main__":
    raise SystemExit(main())
