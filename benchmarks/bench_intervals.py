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
- ``ewm+aci``: both, step 0.005; ``ewm+aci.02``: both, step 0.02 (the shipped default).

(Log errors, ``log(actual / forecast)`` with bounds ``forecast * exp(q * vol)``, were tried and
dropped: a little closer to nominal on the validation years, 0.82 against 0.88 points, but the
exponential turns the wildest coins' tails into 95 % bounds of +1e11 % and more, so their mean
interval score is thousands of times worse.)

They are scored on the bundled data's two **previous** years (ending 2016-09-22 and 2015-09-22,
every coin truncated there: a point-in-time loader) by the mean over models, levels and both years
of ``|coverage - level|``; the best one is then run on the last year (ending 2017-09-22), once.
Coverage is the share of actual closes inside the interval over every forecast day of a 12-fold
walk-forward backtest, horizon 10, like-for-like coins.

    python benchmarks/bench_intervals.py            # writes benchmarks/results/intervals.md
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

SETTINGS = (
    "calibration_origins",
    "interval_vol_window",
    "interval_vol_ewm",
    "interval_half_life",
    "interval_aci_gamma",
)
METHODS = {
    "plain": {},
    "vol30": {"interval_vol_window": 30},
    "ewm": {"interval_vol_ewm": 0.94},
    "aci": {"interval_aci_gamma": 0.005},
    "ewm+aci": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.005},
    "ewm+aci.02": {"interval_vol_ewm": 0.94, "interval_aci_gamma": 0.02},
}
VALIDATION = ("2016-09-22", "2015-09-22")


def settings(method: str) -> dict:
    """The interval settings of ``method`` (everything else off, 180 calibration origins)."""
    defaults = {
        "calibration_origins": 180,
        "interval_vol_window": 0,
        "interval_vol_ewm": None,
        "interval_half_life": None,
        "interval_aci_gamma": None,
    }
    return {**defaults, **METHODS[method]}


def coverage(
    as_of: str | None,
    models: list[str],
    methods: list[str],
    *,
    period: int = 365,
    folds: int = 12,
    horizon: int = 10,
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
    for coin in loader.get_crypto_names():
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
                    fitted.set_params(**settings(method))
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
    tables = []
    for method in methods:
        result = BacktestResult(
            params={"period": period, "folds": folds, "horizon": horizon, "levels": list(levels)}
        )
        result.forecasts = pd.DataFrame(rows[method], columns=FORECAST_COLUMNS + interval_columns(levels))
        table = result.coverage(common=True)
        table.insert(0, "method", method)
        table.insert(0, "year_end", as_of or "2017-09-22")
        tables.append(table)
    return pd.concat(tables, ignore_index=True), time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "intervals.md")
    args = parser.parse_args()
    models = args.models.split(",")
    methods = args.methods.split(",")
    import pandas as pd

    tuning, seconds = [], 0.0
    for as_of in VALIDATION:
        table, took = coverage(as_of, models, methods)
        seconds += took
        print(table.to_string(index=False), f"\n{took:.0f} s CPU", flush=True)
        tuning.append(table)
    tuning = pd.concat(tuning, ignore_index=True)
    tuning["miss"] = (tuning["coverage"] - tuning["level"]).abs()
    score = tuning.groupby("method")["miss"].mean().sort_values()
    per_year = tuning.groupby(["method", "year_end"])["miss"].mean().unstack()
    best = str(score.index[0])
    shipped = "ewm+aci.02"  # the forecasters' default, for the before / after comparison
    final, took = coverage(
        None, models, [best] + ([shipped] if shipped in methods and shipped != best else [])
    )
    lines = [
        "# Prediction intervals: method chosen on the two years before the last, measured on the last",
        "",
        f"Command: `python benchmarks/bench_intervals.py --models {args.models} --methods {args.methods}`",
        "",
        "Methods (180 walk-forward calibration origins each): "
        + "; ".join(f"`{m}` = {METHODS[m] or 'raw return errors'}" for m in methods)
        + ". Walk-forward backtest of every coin's last 365 days before the year's end (12 folds, "
        "horizon 10) with a point-in-time loader; coverage = % of actual closes inside the interval, "
        "widths in % of the last close (mean over forecast days, so wild altcoins weigh a lot; the "
        "median is the typical coin); like-for-like coins.",
        "",
        "## Validation years (end 2015-09-22 and 2016-09-22)",
        "",
        markdown_table(tuning.drop(columns="miss")),
        "",
        "Mean |coverage - level| over models and levels:",
        "",
        markdown_table(per_year.assign(both=score).sort_values("both").reset_index()),
        "",
        f"## Chosen: `{best}` ({METHODS[best] or 'raw return errors'}) — the last year (ends 2017-09-22), run once"
        + (
            f" (with the shipped default `{shipped}` for comparison)"
            if shipped != best and shipped in methods
            else ""
        ),
        "",
        markdown_table(final),
        "",
        f"CPU: validation {seconds:.0f} s, last year {took:.0f} s.",
    ]
    lines += [
        "",
        "Interval score: mean Winkler score in % of the last close (width plus 2 / (1 - level) times the "
        "distance of a miss; lower is better).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
