"""Prediction engine: warm latency, 1 vs 2 worker processes, RSS with every model warm, and the
talk's sequential loop vs the engine.

    .venv/bin/python benchmarks/bench_engine.py [--broker redis://127.0.0.1:6379/14] [--epochs 1]
        [--horizon 7] [--out benchmarks/results/engine.md]

What it does, in one run (real ``celery -A crypto_ml worker`` processes, prefork pool):

1. **Sequential loop** (the talk's): one fresh Python process fits the LSTM on every coin and
   predicts, one coin after another (TensorFlow's default thread pools, i.e. both cores).
2. **1 worker process** (``-c 1``, ``CRYPTO_ML_TF_THREADS=1``, TF imported in the child at start):
   LSTM predict for every coin, cold (fit + predict) -> throughput; then the same requests again
   warm -> latency p50/p95 (client round trip and in-task time); the same for naive and linear;
   then the child's RSS with every coin's three models warm and the cache bound checked.
3. **2 worker processes** (``-c 2``, 1 TF thread each): the same cold LSTM pass -> throughput.

Cold LSTM work (fit + predict) is the CPU-bound load of the 1-vs-2 comparison. Results go to a
per-run Redis key prefix (deleted afterwards); predictions to a temporary SQLite database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def sequential_loop(epochs: int, horizon: int, limit: int = 0) -> None:
    """The talk's loop in this process; prints one JSON line."""
    started = time.perf_counter()
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.forecasting.registry import make_forecaster

    loader = CryptoLoader()
    done = skipped = 0
    fit_started = None
    for coin in loader.get_crypto_names()[: limit or None]:
        closes, _ = loader.get_prices(coin)
        model = make_forecaster("lstm", epochs=epochs)
        if len(closes) < model.min_points():
            skipped += 1
            continue
        try:
            model.fit(closes).predict(horizon)
        except ValueError:
            skipped += 1
            continue
        if fit_started is None:
            fit_started = time.perf_counter()  # after the first coin: TF imported and traced
        done += 1
    end = time.perf_counter()
    print(
        json.dumps(
            {
                "coins": done,
                "skipped": skipped,
                "seconds": end - started,
                "seconds_after_first": end - fit_started,
            }
        )
    )


class Worker:
    def __init__(self, env: dict[str, str], concurrency: int, log_path: Path) -> None:
        self.log_path = log_path
        self.concurrency = concurrency
        self.node = f"bench-{secrets.token_hex(3)}@{socket.gethostname()}"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "crypto_ml",
                "worker",
                "-Q",
                "predict,train",
                "--pool",
                "prefork",
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                self.node,
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_text(errors="replace")
            if " ready." in text and text.count("pool process") >= self.concurrency:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{text[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def machine_busy() -> float:
    """Load average over the last minute (other jobs on this machine show up here)."""
    return os.getloadavg()[0]


def run_pass(app, coins, model, horizon, params=None, timeout=900) -> tuple[float, list[dict], list[float]]:
    """Submit one predict per coin at once; wall time, results (errors dropped)."""
    started = time.perf_counter()
    kwargs = {"model": model, "horizon": horizon}
    if params:
        kwargs["params"] = params
    pending = [
        app.send_task("crypto_ml.predict", kwargs={"coin": c, **kwargs}, queue="predict") for c in coins
    ]
    results = []
    for r in pending:
        try:
            results.append(r.get(timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - EngineInputError for coins with too little data
            if "EngineInputError" not in type(exc).__name__ and "EngineInputError" not in repr(exc):
                raise
    return time.perf_counter() - started, results


def latency_pass(app, coins, model, horizon, params=None) -> tuple[list[float], list[float]]:
    """One request at a time: client round trips and in-task seconds (ms)."""
    kwargs = {"model": model, "horizon": horizon}
    if params:
        kwargs["params"] = params
    rtt, inside = [], []
    for coin in coins:
        t = time.perf_counter()
        res = app.send_task("crypto_ml.predict", kwargs={"coin": coin, **kwargs}, queue="predict").get(
            timeout=120
        )
        rtt.append((time.perf_counter() - t) * 1000)
        inside.append(res["seconds"] * 1000)
        assert res["cached"], res
    return rtt, inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--cache-size", type=int, default=320)
    parser.add_argument("--coins", type=int, default=0, help="only the first N coins (default: all)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "engine.md"))
    parser.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sequential:
        sequential_loop(args.epochs, args.horizon, args.coins)
        return

    import psutil
    import redis

    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    prefix = f"bench_engine_{secrets.token_hex(4)}:"
    env = {
        **os.environ,
        "CRYPTO_ML_HOME": str(tmp / "home"),
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "CRYPTO_ML_DATABASE_URL": f"sqlite:///{tmp / 'crypto_ml.db'}",
        "CRYPTO_ML_BROKER_URL": args.broker,
        "CRYPTO_ML_RESULT_BACKEND": args.broker,
        "CRYPTO_ML_ENGINE_KEY_PREFIX": prefix,
        "CRYPTO_ML_ENGINE_CACHE_SIZE": str(args.cache_size),
        "CRYPTO_ML_ENGINE_PRELOAD": "tf",
        "CRYPTO_ML_ENGINE_EVENTS": "0",
        "CRYPTO_ML_TF_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    os.environ.update({k: env[k] for k in ("CRYPTO_ML_HOME", "AIRFLOW_HOME", "CRYPTO_ML_DATABASE_URL")})
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.engine.app import make_app
    from crypto_ml.settings.engine import EngineConfig
    from crypto_ml.storage import migrate

    migrate(env["CRYPTO_ML_DATABASE_URL"])
    app = make_app(EngineConfig.from_env(env))
    coins = CryptoLoader().get_crypto_names()
    if args.coins:
        coins = coins[: args.coins]
    lstm = {"epochs": args.epochs}
    out: dict = {"coins": len(coins)}
    rconn = redis.Redis.from_url(args.broker)

    try:
        # 1. the talk's sequential loop, in a fresh process with TF's default threads
        seq_env = {k: v for k, v in env.items() if k != "CRYPTO_ML_TF_THREADS"}
        t = time.perf_counter()
        load_before = machine_busy()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--sequential",
                "--epochs",
                str(args.epochs),
                "--horizon",
                str(args.horizon),
                "--coins",
                str(args.coins),
            ],
            env=seq_env,
            capture_output=True,
            text=True,
            check=True,
        )
        out["sequential"] = json.loads(proc.stdout.strip().splitlines()[-1])
        out["sequential"]["wall"] = time.perf_counter() - t
        out["sequential"]["load_before"] = load_before
        out["sequential"]["load_after"] = machine_busy()
        print("sequential", out["sequential"], flush=True)

        for conc in (1, 2):
            worker = Worker(env, conc, tmp / f"worker-c{conc}.log")
            try:
                worker.wait_ready()
                load_before, cpu_before = machine_busy(), tree_cpu(worker.proc.pid)
                wall, results = run_pass(app, coins, "lstm", args.horizon, lstm)
                cpu = tree_cpu(worker.proc.pid) - cpu_before
                out[f"lstm_cold_c{conc}"] = {
                    "seconds": wall,
                    "done": len(results),
                    "per_s": len(results) / wall,
                    "worker_cpu_s": cpu,
                    "cores_used": cpu / wall,
                    "load_before": load_before,
                    "load_after": machine_busy(),
                    "pids": len({r["pid"] for r in results}),
                }
                print(f"c={conc} lstm cold", out[f"lstm_cold_c{conc}"], flush=True)
                eligible = sorted({r["coin"] for r in results})
                if conc == 1:
                    rtt, inside = latency_pass(app, eligible, "lstm", args.horizon, lstm)
                    out["lat_lstm"] = {
                        "rtt_p50": pct(rtt, 0.5),
                        "rtt_p95": pct(rtt, 0.95),
                        "in_p50": pct(inside, 0.5),
                        "in_p95": pct(inside, 0.95),
                        "n": len(rtt),
                    }
                    for model in ("naive", "linear"):
                        run_pass(app, coins, model, args.horizon)  # cold: fit once per coin
                        rtt, inside = latency_pass(app, coins, model, args.horizon)
                        out[f"lat_{model}"] = {
                            "rtt_p50": pct(rtt, 0.5),
                            "rtt_p95": pct(rtt, 0.95),
                            "in_p50": pct(inside, 0.5),
                            "in_p95": pct(inside, 0.95),
                            "n": len(rtt),
                        }
                        print(model, out[f"lat_{model}"], flush=True)
                    stats = app.send_task("crypto_ml.stats", queue="predict").get(timeout=60)
                    children = psutil.Process(worker.proc.pid).children()
                    out["rss"] = {
                        "child_rss_mb": stats["rss_bytes"] / 2**20,
                        "cache": stats["cache"],
                        "tensorflow": stats["tensorflow"],
                        "parent_rss_mb": psutil.Process(worker.proc.pid).memory_info().rss / 2**20,
                        "children": len(children),
                    }
                    print("rss", out["rss"], flush=True)
                # Warm every pool process: a pass lands each coin on whichever process is free, so
                # with 2 processes one pass leaves about half the coins cold in the other one.
                for _ in range(12):
                    _, warming = run_pass(app, coins, "naive", args.horizon)
                    if all(r.get("cached") for r in warming):
                        break
                wall, results = run_pass(app, coins, "naive", args.horizon)  # warm
                out[f"naive_warm_c{conc}"] = {
                    "seconds": wall,
                    "per_s": len(results) / wall,
                    "cached": sum(bool(r.get("cached")) for r in results) / len(results),
                }
                print(f"c={conc} naive warm", out[f"naive_warm_c{conc}"], flush=True)
            finally:
                worker.stop()
    finally:
        keys = list(rconn.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            rconn.delete(*keys)

    write_report(out, args)


def write_report(o: dict, args) -> None:
    seq, c1, c2 = o["sequential"], o["lstm_cold_c1"], o["lstm_cold_c2"]
    speedup = c1["seconds"] / c2["seconds"]
    ratio = seq["seconds"] / c2["seconds"]
    lines = [
        "# Prediction engine benchmark",
        "",
        f"One run of `.venv/bin/python benchmarks/bench_engine.py` on {platform.node()} "
        f"({os.cpu_count()} CPU cores, Python {platform.python_version()}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Broker and results: Redis (`{args.broker}`, per-run key prefix); predictions stored in SQLite. "
        f"Real `celery -A crypto_ml worker --pool prefork` processes; TensorFlow imported in each pool "
        f"child at start (`CRYPTO_ML_ENGINE_PRELOAD=tf`), `CRYPTO_ML_TF_THREADS=1` per process. "
        f"LSTM = the talk's 50 -> 100 -> Dense(1) network, window 50, {args.epochs} epoch(s); "
        f"horizon {args.horizon} days; {o['coins']} bundled coins "
        f"({c1['done']} have enough history for the LSTM).",
        "",
        "## Warm predict latency per coin (model already in the worker's cache)",
        "",
        "| model | n | round trip p50 | round trip p95 | in task p50 | in task p95 |",
        "|---|---|---|---|---|---|",
    ]
    for model in ("naive", "linear", "lstm"):
        lat = o[f"lat_{model}"]
        lines.append(
            f"| {model} | {lat['n']} | {lat['rtt_p50']:.1f} ms | {lat['rtt_p95']:.1f} ms | "
            f"{lat['in_p50']:.1f} ms | {lat['in_p95']:.1f} ms |"
        )
    lines += [
        "",
        "Round trip = `send_task` -> `AsyncResult.get()` in the client (Redis pub/sub), one request "
        "at a time; in task = the task's own `seconds` (validation, cache hit, predict, upsert of the "
        "prediction row). Target warm p50 <= 50 ms for naive/linear.",
        "",
        "## Throughput over all coins: 1 vs 2 worker processes",
        "",
        "| load | 1 process | 2 processes | speed-up |",
        "|---|---|---|---|",
        f"| LSTM cold (fit + predict, CPU-bound), {c1['done']} coins | {c1['seconds']:.1f} s "
        f"({c1['per_s']:.2f}/s) | {c2['seconds']:.1f} s ({c2['per_s']:.2f}/s) | **{speedup:.2f}x** |",
        f"| naive warm (I/O-bound: broker + DB write), {o['coins']} coins | "
        f"{o['naive_warm_c1']['seconds']:.2f} s ({o['naive_warm_c1']['per_s']:.0f}/s) | "
        f"{o['naive_warm_c2']['seconds']:.2f} s ({o['naive_warm_c2']['per_s']:.0f}/s) | "
        f"{o['naive_warm_c1']['seconds'] / o['naive_warm_c2']['seconds']:.2f}x |",
        "",
        f"Warm = served from the process's cache: {o['naive_warm_c1'].get('cached', 0):.0%} (1 process) and "
        f"{o['naive_warm_c2'].get('cached', 0):.0%} (2 processes) of the measured naive requests.",
        "",
        "Target: 2 processes >= 1.8x the throughput of 1 on CPU-bound work.",
        "",
        f"CPU actually used by the worker processes during the LSTM pass: "
        f"{c1['cores_used']:.2f} cores with 1 process, {c2['cores_used']:.2f} cores with 2 "
        f"(pool processes that served tasks: {c1['pids']} and {c2['pids']}). Machine load average "
        f"(1 min) before/after: {c1['load_before']:.1f}/{c1['load_after']:.1f} (1 process), "
        f"{c2['load_before']:.1f}/{c2['load_after']:.1f} (2 processes); anything above the engine's "
        f"own processes is other work on the machine competing for the 2 cores.",
        f"CPU per coin: {c1['worker_cpu_s'] / c1['done']:.2f} s (1 process), "
        f"{c2['worker_cpu_s'] / c2['done']:.2f} s (2 processes); if each process had a core of its "
        f"own the 2-process speed-up would be about "
        f"{2 * (c1['worker_cpu_s'] / c1['done']) / (c2['worker_cpu_s'] / c2['done']):.2f}x "
        f"(a projection from CPU time, not a measurement).",
        "",
        "## Memory: one worker process with TensorFlow and every coin's models warm",
        "",
        f"- Pool child RSS: **{o['rss']['child_rss_mb']:.0f} MiB** with TensorFlow loaded "
        f"({o['rss']['tensorflow']}) and {o['rss']['cache']['size']} fitted models in its cache "
        f"(LSTM + naive + linear per coin; bound "
        f"`CRYPTO_ML_ENGINE_CACHE_SIZE={o['rss']['cache']['maxsize']}`, "
        f"evictions {o['rss']['cache']['evictions']}, hits {o['rss']['cache']['hits']}, "
        f"misses {o['rss']['cache']['misses']}).",
        f"- Worker main process (consumer, no TensorFlow): {o['rss']['parent_rss_mb']:.0f} MiB.",
        "",
        "## The talk's sequential loop vs the engine",
        "",
        f"- Sequential loop, one process, TF default threads: {seq['coins']} coins in "
        f"{seq['seconds']:.1f} s (including the TensorFlow import and the first trace; "
        f"{seq['seconds_after_first']:.1f} s after the first coin; load average "
        f"{seq['load_before']:.1f}/{seq['load_after']:.1f} before/after).",
        f"- Engine, 2 worker processes (TensorFlow already imported in each child): "
        f"{c2['done']} coins in {c2['seconds']:.1f} s.",
        f"- Ratio sequential / engine: **{ratio:.2f}x** "
        f"(excluding the sequential loop's import and first trace: "
        f"{seq['seconds_after_first'] / c2['seconds']:.2f}x).",
        "",
        "Raw figures:",
        "",
        "```json",
        json.dumps(o, indent=1, default=str),
        "```",
        "",
    ]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
