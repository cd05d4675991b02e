"""Choose the conformal calibration on years nobody evaluates on, then measure the last year once.

The interval methods compared (interval settings of the forecasters, constructor parameters, 180
walk-forward calibration origins each):

- ``plain``: split-conformal on the raw return errors (the first release's method);
- ``vol30``: normalised conformal, errors divided by the standard deviation of the last 30 daily
  log returns at their origin (the first release's option);
- ``ewm``: normalised conformal, errors divided by the RiskMetrics volatility (EWMA of squared
  daily log returns, decay 0.94) known at their origin, bounds times the volatility now;
- ``aci``: adaptive conformal inference (Gibbs & Candes 2021, step 0.005) along the calibration
  walk, on the raw errors;
- ``ewm+aci``: both, step 0.005 (the shipped default); ``ewm+aci.01`` / ``ewm+aci.02``: steps 0.01
  and 0.02 (``ewm+aci.02`` was the default before);
- ``log...``: log errors ``log(actual / forecast)``, bounds ``forecast * exp(q * vol)`` (an earlier
  trial without the cap gave 95 % bounds of +1e11 % on the wildest coins; every method's bounds
  are now capped at ``MAX_BOUND_RATIO`` times the last close);
- ``...aci2...``: adaptive conformal inference with one level per side.

They are scored on the bundled data's two **previous** years (ending 2016-09-22 and 2015-09-22,
every coin truncated there: a point-in-time loader). Eligible are the methods within 3 points of
nominal coverage with misses below and above within 3 points of each other on every year, model
and level; among them the lowest mean interval (Winkler) score relative to all methods' wins
(none eligible: the smallest mean ``|coverage - level|``, and the report says so). The chosen one
is then run on the last year (ending 2017-09-22), once, beside the previous release's method
(``before``, uncapped). Coverage is the share of actual closes inside the interval over every
forecast day of a 12-fold walk-forward backtest, horizon 10, like-for-like coins.

    python benchmarks/bench_intervals.py            # writes benchmarks/results/intervals.md
    python benchmarks/bench_intervals.py --coins every:4 --validation-only --out /tmp/i.md   # quick
    python benchmarks/bench_intervals.py --last-year ewm+aci,before --out /tmp/l.md       # like for like
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto_ml.data.loader import CryptoLoader  # noqa: E402
from crypto_ml.evaluation import markdown_table  # noqa: E402

METHODS = {
    "plain": {},
    "vol30": {"interval_vol_window": 30},
    "ewm": {"interval_vol_ewm": 0.94},
    "aci": {"interval_aci_gamma": 0.005},
    "ewm+aci": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.005},
    "ewm+aci.01": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.01},
    "ewm+aci.02": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.02},
    "log": {"interval_log": True},
    "log+ewm": {"interval_log": True, "interval_vol_ewm": 0.94},
    "log+ewm+aci": {"interval_log": True, "interval_vol_ewm": 0.94, "interval_aci_gamma": 0.005},
    "log+ewm+aci.02": {"interval_log": True, "interval_vol_ewm": 0.94, "interval_aci_gamma": 0.02},
    "ewm+aci2": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.005, "interval_aci_sides": True},
    "ewm+aci2.01": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.01, "interval_aci_sides": True},
    "ewm+aci2.02": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.02, "interval_aci_sides": True},
    "log+ewm+aci2": {
        "interval_log": True,
        "interval_vol_ewm": 0.94,
        "interval_aci_gamma": 0.005,
        "interval_aci_sides": True,
    },
    "log+ewm+aci2.01": {
        "interval_log": True,
        "interval_vol_ewm": 0.94,
        "interval_aci_gamma": 0.01,
        "interval_aci_sides": True,
    },
}
VALIDATION = ("2016-09-22", "2015-09-22")
#: The method of the release before this comparison (ewm+aci.02: return errors, EWMA-normalised,
#: adaptive step 0.02, bounds not capped), run on the last year besides the chosen one: ``before``
#: is exactly that release's intervals (the cap lifted), ``ewm+aci.02`` the same with the cap.
BEFORE = "ewm+aci.02"
UNCAPPED = "before"
#: A method is eligible when, on every validation year, model and level, its coverage is within
#: this many points of nominal and its misses below and above differ by at most this many points.
TOLERANCE = 3.0


def _cap() -> float:
    from crypto_ml.forecasting.intervals import MAX_BOUND_RATIO

    return MAX_BOUND_RATIO


CAP = _cap()


def settings(method: str) -> dict:
    """The interval settings of ``method`` (everything else off, 180 calibration origins)."""
    defaults = {
        "calibration_origins": 180,
        "interval_vol_window": 0,
        "interval_vol_ewm": None,
        "interval_half_life": None,
        "interval_aci_gamma": None,
        "interval_log": False,
        "interval_aci_sides": False,
    }
    return {**defaults, **METHODS[method]}


def choose(tuning):
    """The method chosen on the validation years: among the eligible ones (:data:`TOLERANCE`), the
    lowest mean relative interval score (each Winkler score over the mean of all methods' on the
    same year, model and level); with none eligible, the smallest mean |coverage - level|.
    Returns ``(method, per-method table, how it was chosen)``."""
    t = tuning.copy()
    t["gap"] = (t["coverage"] - t["level"]).abs()
    t["imbalance"] = (t["miss_below"] - t["miss_above"]).abs()
    t["rel_score"] = t["interval_score_pct"] / t.groupby(["year_end", "model", "level"])[
        "interval_score_pct"
    ].transform("mean")
    per = t.groupby("method").agg(
        mean_gap=("gap", "mean"),
        max_gap=("gap", "max"),
        max_imbalance=("imbalance", "max"),
        rel_score=("rel_score", "mean"),
    )
    per["eligible"] = (per["max_gap"] <= TOLERANCE) & (per["max_imbalance"] <= TOLERANCE)
    if per["eligible"].any():
        per = per.sort_values(["eligible", "rel_score"], ascending=[False, True])
        how = (
            f"the lowest mean relative interval score among the methods within {TOLERANCE:g} points of "
            f"nominal coverage and with misses balanced within {TOLERANCE:g} points on every validation "
            "year, model and level"
        )
    else:
        per = per.sort_values("mean_gap")
        how = (
            f"no method is within {TOLERANCE:g} points of nominal coverage with balanced misses on every "
            "validation year, model and level: the smallest mean |coverage - level|"
        )
    return str(per.index[0]), per.reset_index(), how


def coverage(
    as_of: str | None,
    models: list[str],
    methods: list[str],
    *,
    coins: list[str] | None = None,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
    common_days: bool = False,
):
    """Coverage of every method on one year: a walk-forward backtest (as ``crypto-ml backtest``:
    expanding window, ``folds`` folds over the last ``period`` days before ``as_of``) in which
    each fold's model and its calibration walk are fitted once, and every method turns that walk
    into residuals and bounds. Returns the like-for-like coverage table and the CPU seconds."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone

    from crypto_ml.evaluation.backtest import FORECAST_COLUMNS, BacktestResult, fold_starts, interval_columns
    from crypto_ml.forecasting import DEFAULT_LEVELS, level_key, make_forecaster

    levels = DEFAULT_LEVELS
    loader = CryptoLoader(as_of=as_of) if as_of else CryptoLoader()
    started = time.process_time()
    rows = {m: [] for m in methods}
    from crypto_ml.forecasting import intervals

    names = loader.get_crypto_names()
    if coins is not None:  # those of the chosen coins that have closes by as_of
        names = [c for c in names if c in set(coins)]
    for coin in names:
        closes, _ = loader.get_prices(coin)
        y = np.asarray(closes, dtype="float64")
        for name in models:
            # the walk starts where a volatility exists (the latest start of all methods)
            template = make_forecaster(name, **settings("ewm"))
            if len(y) < period + max(template.min_points(), 2):
                continue
            for i, start in enumerate(fold_starts(len(y), period, folds)):
                h = min(horizon, len(y) - start)
                train = y[:start]
                try:
                    fitted = clone(template)
                    fitted._fit_point(train)
                    point = fitted.predict(h)
                except ValueError:
                    continue
                walk = fitted._calibration_walk(train)
                for method in methods:
                    intervals.MAX_BOUND_RATIO = float("inf") if method == UNCAPPED else CAP
                    fitted.set_params(**settings(BEFORE if method == UNCAPPED else method))
                    fitted._aci_cache = None
                    fitted.interval_residuals_ = (
                        None if walk is None else fitted._calibration_residuals(train, *walk)
                    )
                    try:
                        bounds = fitted.predict_interval(h, levels)
                    except ValueError:
                        bounds = {}
                    for k in range(h):
                        row = {
                            "coin": coin,
                            "model": name,
                            "fold": i,
                            "step": k + 1,
                            "date": start + k,
                            "last_close": train[-1],
                            "actual": y[start + k],
                            "forecast": point[k],
                        }
                        for level in levels:
                            lo, hi = bounds.get(level, (None, None))
                            row[f"lower_{level_key(level)}"] = (
                                float(lo[k]) if lo is not None else float("nan")
                            )
                            row[f"upper_{level_key(level)}"] = (
                                float(hi[k]) if hi is not None else float("nan")
                            )
                        rows[method].append(row)
    intervals.MAX_BOUND_RATIO = CAP
    frames = {m: pd.DataFrame(rows[m], columns=FORECAST_COLUMNS + interval_columns(levels)) for m in methods}
    if common_days:  # only the forecast days on which every method gave both bounds of every level
        key = ["coin", "model", "fold", "step"]
        bounds = interval_columns(levels)
        shared = None
        for frame in frames.values():
            ok = frame.loc[frame[bounds].notna().all(axis=1), key]
            shared = ok if shared is None else shared.merge(ok, on=key)
        frames = {m: f.merge(shared, on=key) for m, f in frames.items()}
    tables = []
    for method in methods:
        result = BacktestResult(
            params={"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)}
        )
        result.forecasts = frames[method]
        table = result.coverage(common=True)
        table.insert(0, "method", method)
        table.insert(0, "year_end", as_of or "2017-09-22")
        tables.append(table)
    return pd.concat(tables, ignore_index=True), time.process_time() - started


def pick_coins(text: str) -> list[str] | None:
    """The coins of ``--coins``: None for all, every K-th bundled coin, or a checked list."""
    every = CryptoLoader().get_crypto_names()
    if text == "all":
        return None
    if text.startswith("every:"):
        step = int(text.split(":", 1)[1])
        if step < 1:
            raise SystemExit(f"--coins every:K needs K >= 1, got {step}")
        return every[::step]
    coins = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in coins if c not in every]
    if unknown:
        raise SystemExit(f"--coins: not bundled coins: {', '.join(unknown)}")
    return coins


def last_year_only(args, models: list[str], methods: list[str], coins: list[str] | None) -> int:
    """``--last-year``: the methods on the last year, all forecast days and the common ones."""
    every, took = coverage(None, models, methods, coins=coins)
    common, took2 = coverage(None, models, methods, coins=coins, common_days=True)
    command = f"python benchmarks/bench_intervals.py --models {args.models} --last-year {args.last_year}" + (
        f" --coins {args.coins}" if args.coins != "all" else ""
    )
    lines = [
        "## The last year, like for like",
        "",
        f"Command: `{command}`",
        "",
        "On every forecast day each method gives intervals:",
        "",
        markdown_table(every),
        "",
        (
            "On the forecast days where every method gives both levels (a capped method refuses a day "
            "whose 80 % "
            "and 95 % bands would both be [0, cap]):"
        ),
        "",
        markdown_table(common),
        "",
        f"CPU: {took + took2:.0f} s.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--coins",
        default="all",
        help="all (default), every:K (every K-th bundled coin, sorted: a quick run) or a list",
    )
    parser.add_argument(
        "--validation-only",
        action="store_true",
        help="score the methods on the validation years and stop (the last year not run)",
    )
    parser.add_argument(
        "--last-year",
        default=None,
        metavar="METHODS",
        help="only measure these methods on the last year, on the forecast days where all of "
        "them have intervals (like-for-like), and stop",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "intervals.md")
    args = parser.parse_args()
    models = args.models.split(",")
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")
    coins = pick_coins(args.coins)
    import pandas as pd

    if args.last_year:
        chosen = args.last_year.split(",")
        wrong = [m for m in chosen if m not in METHODS and m != UNCAPPED]
        if wrong:
            raise SystemExit(
                f"--last-year: unknown {', '.join(wrong)} (known: {', '.join(METHODS)}, {UNCAPPED})"
            )
        return last_year_only(args, models, chosen, coins)

    tuning, seconds = [], 0.0
    for as_of in VALIDATION:
        table, took = coverage(as_of, models, methods, coins=coins)
        seconds += took
        print(table.to_string(index=False), f"\n{took:.0f} s CPU", flush=True)
        tuning.append(table)
    tuning = pd.concat(tuning, ignore_index=True)
    best, ranking, how = choose(tuning)
    print(ranking.to_string(index=False), f"\nchosen: {best} ({how})", flush=True)
    command = (
        f"python benchmarks/bench_intervals.py --models {args.models} --methods {args.methods}"
        + (f" --coins {args.coins}" if args.coins != "all" else "")
        + (" --validation-only" if args.validation_only else "")
    )
    lines = [
        "# Prediction intervals: method chosen on the two years before the last, measured on the last",
        "",
        f"Command: `{command}`",
        "",
        "Methods (180 walk-forward calibration origins each): "
        + "; ".join(f"`{m}` = {METHODS[m] or 'raw return errors'}" for m in methods)
        + ". Walk-forward backtest of every coin's last 365 days before the year's end (12 folds, "
        "horizon 10) with a point-in-time loader; coverage = % of actual closes inside the interval, "
        "widths in % of the last close (mean over forecast days, so wild altcoins weigh a lot; the "
        "median is the typical coin); `interval_score_pct` = mean Winkler score in % of the last close "
        "(the width plus 2 / (1 - level) times the distance of a miss; lower is better); like-for-like "
        "coins. Every bound is capped at "
        "`MAX_BOUND_RATIO` x the last close (crypto_ml/forecasting/intervals.py), for every method.",
        "",
        "## Validation years (end 2015-09-22 and 2016-09-22)",
        "",
        markdown_table(tuning),
        "",
        (
            "Per method over both years, models and levels: mean and largest |coverage - level|, largest "
            "|miss_below - miss_above|, mean interval score relative to all methods' mean (1 = average):"
        ),
        "",
        markdown_table(ranking),
        "",
        f"Chosen: `{best}` ({how}).",
    ]
    if not args.validation_only:
        run = [best] + ([BEFORE] if BEFORE != best else []) + [UNCAPPED]
        final, took = coverage(None, models, run, coins=coins)
        lines += [
            "",
            (
                f"## The last year (ends 2017-09-22), run once: chosen `{best}` against the method before "
                f"(`{UNCAPPED}`: `{BEFORE}` with no cap on the bounds, exactly the previous release; "
                f"`{BEFORE}`: "
                "the same with the cap)"
            ),
            "",
            markdown_table(final),
            "",
            f"CPU: validation {seconds:.0f} s, last year {took:.0f} s.",
        ]
    else:
        lines += ["", f"CPU: validation {seconds:.0f} s."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
