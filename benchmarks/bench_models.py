"""Benchmark the forecasters: LSTM training cost and cold vs warm prediction.

Usage::

    CRYPTO_ML_TF_THREADS=2 .venv/bin/python benchmarks/bench_models.py [--coins bitcoin,ethereum,litecoin]
        [--epochs 10] [--repeat 20]

1. LSTM training, the talk's network (window 50, LSTM 50 -> 100, batch 64): seconds per epoch
   per coin, measured as ``(fit(1 + k epochs) - fit(1 epoch)) / k`` so the fixed cost of a fit
   (building the model, copying weights, the data pipeline) is reported apart, after one warm-up
   fit that traces the shared train step; and one full fit of bitcoin with
   ``--epochs`` epochs.
2. Cold start vs warm predict per model: each model is fitted on bitcoin and saved (JSON, .keras);
   *cold* runs in a fresh Python process and times ``import crypto_ml.forecasting`` + loading the
   saved model + the first 10-day forecast; *warm* is the median of ``--repeat`` forecasts by an
   already loaded model in this process.

The TensorFlow thread setting (``CRYPTO_ML_TF_THREADS``) is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
from crypto_ml.forecasting import load_forecaster
t1 = time.perf_counter()
f = load_forecaster(sys.argv[1])
t2 = time.perf_counter()
f.predict(10)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "predict": t3 - t2, "total": t3 - t0}))
"""


def table(rows: list[dict], columns: list[str]) -> str:
    cells = [[c] + [str(r[c]) for r in rows] for c in columns]
    widths = [max(len(x) for x in col) for col in cells]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)))
    return "\n".join(lines)


def timed(fn):
    t = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", default="bitcoin,ethereum,litecoin")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the full bitcoin fit")
    parser.add_argument("--extra-epochs", type=int, default=3, help="k in the per-epoch measurement")
    parser.add_argument("--repeat", type=int, default=20, help="warm predictions to time")
    args = parser.parse_args(argv)

    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.forecasting import MODELS, LSTMForecaster, load_forecaster, make_forecaster
    from crypto_ml.forecasting.lstm import import_keras

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {LSTMForecaster.describe_threads()}")
    loader, load_s = timed(CryptoLoader)
    _, tf_s = timed(import_keras)
    import tensorflow as tf

    print(
        f"CryptoLoader() {load_s:.2f} s; import tensorflow+keras {tf_s:.2f} s; TF threads "
        f"intra={tf.config.threading.get_intra_op_parallelism_threads()} "
        f"inter={tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF default)\n"
    )

    # 1. LSTM training cost --------------------------------------------------------------------
    rows = []
    k = args.extra_epochs
    warm_closes, _ = loader.get_prices("bitcoin")
    _, first_fit = timed(lambda: LSTMForecaster(epochs=1).fit(warm_closes))
    print(f"first LSTM fit in this process (builds + traces the shared train step): {first_fit:.2f} s")
    for coin in args.coins.split(","):
        closes, _ = loader.get_prices(coin)
        _, t1 = timed(lambda closes=closes: LSTMForecaster(epochs=1).fit(closes))
        _, tk = timed(lambda closes=closes: LSTMForecaster(epochs=1 + k).fit(closes))
        per_epoch = (tk - t1) / k
        windows = len(closes) - 1 - 50
        rows.append(
            {
                "coin": coin,
                "closes": len(closes),
                "windows": windows,
                "s/epoch": f"{per_epoch:.3f}",
                "ms/window/epoch": f"{1000 * per_epoch / windows:.3f}",
                "fixed cost/fit s": f"{max(t1 - per_epoch, 0):.2f}",
            }
        )
    print("LSTM training (window 50, units (50, 100), batch 64)")
    print(table(rows, list(rows[0])))
    closes, _ = loader.get_prices("bitcoin")
    _, full = timed(lambda: LSTMForecaster(epochs=args.epochs).fit(closes))
    print(f"\nfull fit, bitcoin, {args.epochs} epochs: {full:.2f} s\n")

    # 2. cold start vs warm predict --------------------------------------------------------------
    params = {"lstm": {"epochs": 2}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            folder = Path(tmp) / name
            fitted = make_forecaster(name, **params.get(name, {})).fit(closes)
            fitted.save(folder)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            proc = subprocess.run(
                [sys.executable, "-c", COLD, str(folder)], capture_output=True, text=True, env=env, check=True
            )
            cold = json.loads(proc.stdout.strip().splitlines()[-1])
            warm_model = load_forecaster(folder)
            warm_model.predict(10)  # first call traces the LSTM's predict function
            times = [
                timed(lambda warm_model=warm_model: warm_model.predict(10))[1] for _ in range(args.repeat)
            ]
            rows.append(
                {
                    "model": name,
                    "cold import s": f"{cold['import']:.2f}",
                    "cold load s": f"{cold['load']:.2f}",
                    "cold 1st predict s": f"{cold['predict']:.3f}",
                    "cold total s": f"{cold['total']:.2f}",
                    "warm predict ms": f"{1000 * statistics.median(times):.2f}",
                }
            )
    print("Cold start (fresh process: import + load + first 10-day forecast) vs warm predict (median)")
    print(table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
