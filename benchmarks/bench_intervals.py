"""Choose the conformal calibration on a year nobody evaluates on, then measure the last year.

The interval settings (``calibration_origins``: how many walk-forward days calibrate,
``interval_vol_window``: volatility window of the normalised residuals, 0 = none, and
``interval_half_life``: recency weighting of the residuals, None = equal weights) are
compared on the bundled data's **previous** year (ending 2016-09-22, every coin truncated there:
a point-in-time loader), and the chosen one is then reported on the last year (ending
2017-09-22). Coverage is the share of actual closes inside the interval over every forecast day
of a 12-fold walk-forward backtest, horizon 10.

    python benchmarks/bench_intervals.py            # writes benchmarks/results/intervals.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto_ml.backtest import markdown_table, run_backtest  # noqa: E402
from crypto_ml.data_loader import CryptoLoader  # noqa: E402
from crypto_ml.forecasting.base import BaseForecaster  # noqa: E402

CONFIGS = [(180, 0, None), (180, 30, None), (365, 30, None), (365, 0, 60), (365, 30, 60), (365, 0, 30)]


def coverage(as_of: str | None, models: list[str], origins: int, vol: int, half_life: float | None):
    BaseForecaster.calibration_origins = origins
    BaseForecaster.interval_vol_window = vol
    BaseForecaster.interval_half_life = half_life
    loader = CryptoLoader(as_of=as_of) if as_of else CryptoLoader()
    started = time.perf_counter()
    result = run_backtest(None, models, loader=loader, period=365, folds=12, horizon=10)
    table = result.coverage(common=True)
    table.insert(0, "half_life", "-" if half_life is None else f"{half_life:g}")
    table.insert(0, "vol_window", vol)
    table.insert(0, "origins", origins)
    return table, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "intervals.md")
    args = parser.parse_args()
    models = args.models.split(",")
    import pandas as pd

    tuning, seconds = [], 0.0
    for origins, vol, half_life in CONFIGS:
        table, took = coverage("2016-09-22", models, origins, vol, half_life)
        seconds += took
        print(table.to_string(index=False), flush=True)
        tuning.append(table)
    tuning = pd.concat(tuning, ignore_index=True)
    tuning["miss"] = (tuning["coverage"] - tuning["level"]).abs()
    score = tuning.groupby(["origins", "vol_window", "half_life"])["miss"].mean().sort_values()
    best = score.index[0]
    final, took = coverage(None, models, best[0], best[1], None if best[2] == "-" else float(best[2]))
    lines = [
        "# Prediction intervals: calibration chosen on 2015-09-23..2016-09-22, measured on the last year",
        "",
        f"Command: `python benchmarks/bench_intervals.py --models {args.models}`",
        "",
        "Walk-forward backtest of every coin's last 365 days (12 folds, horizon 10) with a point-in-time "
        "loader; coverage = % of actual closes inside the interval, mean width in % of the last close "
        "(averaged over coins, so wild altcoins weigh a lot); like-for-like coins.",
        "",
        "## Tuning year (ends 2016-09-22)",
        "",
        markdown_table(tuning.drop(columns="miss")),
        "",
        "Mean |coverage - level| per setting: "
        + ", ".join(f"origins {o}, vol window {v}, half-life {h}: {m:.2f}" for (o, v, h), m in score.items()),
        "",
        f"## Chosen: {best[0]} calibration origins, volatility window {best[1]}, half-life {best[2]} "
        "— last year (ends 2017-09-22)",
        "",
        markdown_table(final),
        "",
        f"Elapsed: tuning {seconds:.0f} s, last year {took:.0f} s.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
