"""The walk-forward backtest on 1 vs 2 engine workers (:mod:`crypto_ml.engine.heavy`).

For each worker count the script starts that many ``celery -A crypto_ml worker -Q heavy -c 1``
processes on Redis (a key prefix of its own per run, so no run reuses another's results), times
``run_backtest_distributed(..., where="engine")`` over every bundled coin and the models, sums the
CPU seconds of the workers' process groups and of the caller, and checks that both runs give the
same frames. The runs are side by side in one invocation: the box is shared, so compare the ratio,
not the seconds against another day's run.

    python benchmarks/bench_heavy.py                       # 97 coins x naive,drift,ar, --period 90 --folds 6
    python benchmarks/bench_heavy.py --period 365 --folds 12 --workers 1,2
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))
OUT = ROOT / "benchmarks" / "results" / "heavy.md"


def _cpu(pids: list[int]) -> float:
    """User + system CPU seconds of the processes and all their children."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        log = open(logs / f"heavy-worker-{n}-{i}.log", "wb")  # noqa: SIM115 - the worker's, for its life
        procs.append(subprocess.Popen(
            [CELERY, "-A", "crypto_ml", "worker", "-Q", "heavy", "-c", "1", "--without-gossip",
             "--without-mingle", "-n", f"heavy{i}-{secrets.token_hex(3)}@%h", "-l", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def _wait_ready(app, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(app.control.inspect(timeout=1.0).ping() or {}) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} workers not ready after {timeout:.0f} s")
        time.sleep(0.5)


def run(n: int, args: argparse.Namespace, loader, logs: Path):
    from crypto_ml.engine.app import make_app
    from crypto_ml.settings.engine import EngineConfig
    from crypto_ml.engine.heavy import run_backtest_distributed

    prefix = f"bench_heavy_{os.getpid()}_{n}_{secrets.token_hex(3)}:"
    env = {**os.environ, "CRYPTO_ML_BROKER_URL": args.redis, "CRYPTO_ML_RESULT_BACKEND": args.redis,
           "CRYPTO_ML_ENGINE_KEY_PREFIX": prefix, "CRYPTO_ML_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    app = make_app(EngineConfig.from_env(env))
    procs = _start_workers(n, env, logs)
    try:
        _wait_ready(app, n)
        cpu0, own0, t0 = _cpu([p.pid for p in procs]), time.process_time(), time.perf_counter()
        result = run_backtest_distributed(None, args.models, loader=loader, period=args.period,
                                          folds=args.folds, horizon=args.horizon, where="engine", app=app,
                                          progress=not args.no_progress)
        wall = time.perf_counter() - t0
        cpu = _cpu([p.pid for p in procs]) - cpu0 + time.process_time() - own0
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        import redis

        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
    return result, wall, cpu


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from crypto_ml.data.loader import CryptoLoader

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="naive,drift,ar")
    parser.add_argument("--period", type=int, default=90)
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    redis_url = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    parser.add_argument("--redis", default=redis_url,
                        help="broker and result backend (a key prefix of its own per run)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    counts = [int(v) for v in args.workers.split(",")]
    loader = CryptoLoader()
    logs = Path(tempfile.mkdtemp(prefix="bench_heavy_"))  # the workers' logs
    rows, results = [], {}
    for n in counts:
        load = os.getloadavg()[0]
        result, wall, cpu = run(n, args, loader, logs)
        results[n] = result
        rows.append((n, wall, cpu, load))
        print(f"{n} worker(s): {wall:.1f} s wall, {cpu:.1f} CPU-s", flush=True)
    first = results[counts[0]]
    for n in counts[1:]:
        for name in ("folds", "skipped", "forecasts"):
            pd.testing.assert_frame_equal(getattr(results[n], name), getattr(first, name), rtol=1e-9)
    units = len(loader) * len(args.models)
    base = rows[0][1]
    command = (f"python benchmarks/bench_heavy.py --models {','.join(args.models)} --period {args.period} "
               f"--folds {args.folds} --horizon {args.horizon} --workers {args.workers}")
    lines = [
        "# Heavy work on the engine: the walk-forward backtest, 1 vs 2 workers",
        "",
        f"Command: `{command}`",
        "",
        (f"{len(loader)} bundled coins x {len(args.models)} models = {units} units "
         f"(`crypto_ml.heavy.backtest` tasks on the `heavy` queue), Redis broker and results, each "
         "worker `celery -A crypto_ml worker -Q heavy -c 1`, `CRYPTO_ML_TF_THREADS=1`; the caller "
         "reads the bundled data and sends each unit's closes (about 50 kB of JSON)."),
        (f"Box: {os.cpu_count()} cores, shared with other sessions (load average: the box's 1-minute "
         "load when the run started, other sessions included); the runs are side by side in one "
         "invocation, so read the ratio."),
        "",
        "| workers | wall (s) | CPU-s (workers + caller) | speed-up | load average |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {n} | {wall:.1f} | {cpu:.1f} | {base / wall:.2f}x | {load:.1f} |"
          for n, wall, cpu, load in rows),
        "",
        (f"Same frames (folds, skipped, forecasts) from every run: yes ({len(first.folds)} folds, "
         f"{len(first.skipped)} skipped rows)."),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
