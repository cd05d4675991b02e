"""Heavy work on 1 vs 2 engine workers (:mod:`crypto_ml.engine.heavy`): the walk-forward backtest,
the strategy backtest and the training of every coin's AR and LSTM models.

For each worker count the script starts that many ``celery -A crypto_ml worker -Q heavy,train -c 1``
processes on Redis (a key prefix and a project database of its own per worker count, so no run
reuses another's results or model versions) and times, one kind after the other, each kind's one
call on the engine: ``run_backtest_distributed``, ``run_strategy_distributed`` (its forecasts on the
workers, the replay in the caller) and ``run_training_distributed`` per model (fit, save, evaluate
and promote, per coin). It sums the CPU seconds of the workers' process groups and of the caller,
and checks that every worker count gives the same frames (backtest, strategy report) and the same
versions and verdicts (training). The runs are side by side in one invocation: the box is shared,
so compare the ratio, not the seconds against another day's run.

    python benchmarks/bench_heavy.py                       # every bundled coin, the full comparison
    python benchmarks/bench_heavy.py --quick               # 4 coins, small settings: does it work
    python benchmarks/bench_heavy.py --kinds backtest --period 365 --folds 12 --workers 1,2
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
        procs.append(
            subprocess.Popen(
                [
                    CELERY,
                    "-A",
                    "crypto_ml",
                    "worker",
                    "-Q",
                    "heavy,train",
                    "-c",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"heavy{i}-{secrets.token_hex(3)}@%h",
                    "-l",
                    "info",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def _wait_ready(app, n: int, logs: Path, timeout: float = 180.0) -> None:
    """Until the ``n`` workers answer ``ping`` and each pool process logged its warm start (the
    preloads done), so that no start-up cost falls in a timed run."""
    deadline = time.monotonic() + timeout
    while len(app.control.inspect(timeout=1.0).ping() or {}) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} workers not ready after {timeout:.0f} s")
        time.sleep(0.5)
    for i in range(n):
        log = logs / f"heavy-worker-{n}-{i}.log"
        while "pool process" not in log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {i}'s pool process not warm after {timeout:.0f} s: see {log}")
            time.sleep(0.5)


KINDS = ("backtest", "strategy", "train-ar", "train-lstm")
QUICK_NOTE = (
    "`--quick`: a check that every kind runs on the workers and agrees across worker counts; its "
    "units take about a second in all, too little to measure a speed-up."
)


def _project_env(n: int, root: Path) -> dict[str, str]:
    """A project database and home of their own for the runs with ``n`` workers (migrated)."""
    from crypto_ml.storage import migrate

    home = root / f"home-{n}"
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / f'crypto_ml-{n}.db'}"
    migrate(url)
    return {"CRYPTO_ML_HOME": str(home), "CRYPTO_ML_DATABASE_URL": url}


def _one_kind(kind: str, args: argparse.Namespace, loader, app) -> object:
    """The result of one kind's call on the engine."""
    from crypto_ml.engine.heavy import (
        run_backtest_distributed,
        run_strategy_distributed,
        run_training_distributed,
    )
    from crypto_ml.evaluation.units import BacktestSpec

    progress = not args.no_progress
    if kind == "backtest":
        spec = BacktestSpec(
            args.coin_ids, args.models, period=args.period, folds=args.folds, horizon=args.horizon
        )
        return run_backtest_distributed(spec, loader=loader, where="engine", app=app, progress=progress)
    if kind == "strategy":
        return run_strategy_distributed(
            args.coin_ids,
            args.models,
            loader=loader,
            days=args.days,
            horizon=args.horizon,
            where="engine",
            app=app,
            progress=progress,
        )
    model = kind.split("-", 1)[1]
    params = {"epochs": args.lstm_epochs} if model == "lstm" else None
    answers = run_training_distributed(
        args.train_coins, model, args.as_of, params=params, where="engine", app=app, progress=progress
    )
    return [{k: a[k] for k in ("coin", "model", "version", "n_obs", "promotion")} for a in answers]


def _warm_up(args: argparse.Namespace, loader) -> None:
    """The caller's one-off costs (imports, the loader's frames, the replay's first ledger) paid
    before any timed run, so that the first worker count does not pay them alone."""
    from crypto_ml.engine.heavy import run_backtest_distributed, run_strategy_distributed
    from crypto_ml.evaluation.units import BacktestSpec

    coin = (args.coin_ids or loader.get_crypto_names())[:1]
    if "backtest" in args.kinds:
        spec = BacktestSpec(coin, args.models, period=args.period, folds=args.folds, horizon=args.horizon)
        run_backtest_distributed(spec, loader=loader, where="local")
    if "strategy" in args.kinds:
        run_strategy_distributed(
            coin, args.models, loader=loader, days=5, horizon=args.horizon, where="local"
        )


def run(n: int, args: argparse.Namespace, loader, logs: Path) -> dict[str, tuple[object, float, float]]:
    """Per kind: its result, wall seconds and CPU seconds (workers + caller) with ``n`` workers."""
    from crypto_ml.engine.app import make_app
    from crypto_ml.settings.engine import EngineConfig

    prefix = f"bench_heavy_{os.getpid()}_{n}_{secrets.token_hex(3)}:"
    env = {
        **os.environ,
        "CRYPTO_ML_BROKER_URL": args.redis,
        "CRYPTO_ML_RESULT_BACKEND": args.redis,
        "CRYPTO_ML_ENGINE_KEY_PREFIX": prefix,
        "CRYPTO_ML_TF_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # warm workers: the bundled data, scikit-learn and (for the LSTM) TensorFlow loaded at start
        "CRYPTO_ML_ENGINE_PRELOAD": "tf" if "train-lstm" in args.kinds else "loader",
        **_project_env(n, logs),
    }
    os.environ.update({k: env[k] for k in ("CRYPTO_ML_HOME", "CRYPTO_ML_DATABASE_URL")})
    app = make_app(EngineConfig.from_env(env))
    procs = _start_workers(n, env, logs)
    out = {}
    try:
        _wait_ready(app, n, logs)
        for kind in args.kinds:
            cpu0, own0, t0 = _cpu([p.pid for p in procs]), time.process_time(), time.perf_counter()
            result = _one_kind(kind, args, loader, app)
            wall = time.perf_counter() - t0
            cpu = _cpu([p.pid for p in procs]) - cpu0 + time.process_time() - own0
            out[kind] = (result, wall, cpu)
            print(f"{n} worker(s), {kind}: {wall:.1f} s wall, {cpu:.1f} CPU-s", flush=True)
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
    return out


def _check_same(kind: str, got: object, want: object) -> str:
    """Raise when two runs of ``kind`` differ; a short description of what was compared."""
    import pandas as pd

    if kind == "backtest":
        for name in ("folds", "skipped", "forecasts"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=1e-9)
        return f"{len(want.folds)} folds, {len(want.skipped)} skipped rows"
    if kind == "strategy":
        for name in ("summary", "per_coin", "orders", "equity", "forecasts"):
            pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=1e-9)
        return f"{len(want.orders)} orders, {len(want.forecasts)} forecast days"
    if got != want:
        raise AssertionError(f"{kind}: the versions or verdicts differ: {got} vs {want}")
    return f"{len(want)} versions and verdicts"


def _units(kind: str, args: argparse.Namespace, loader) -> str:
    coins = len(loader) if args.coin_ids is None else len(args.coin_ids)
    if kind in ("backtest", "strategy"):
        task = "crypto_ml.heavy.backtest" if kind == "backtest" else "crypto_ml.heavy.forecast"
        return f"{coins} coins x {len(args.models)} models (`{task}`)"
    return f"{len(args.train_coins)} coins (`crypto_ml.train`)"


def _settings(args: argparse.Namespace) -> str:
    flags = (
        f"--models {','.join(args.models)} --period {args.period} --folds {args.folds} --days {args.days} "
        f"--horizon {args.horizon} --lstm-epochs {args.lstm_epochs} --kinds {','.join(args.kinds)} "
        f"--min-rows {args.min_rows} --workers {args.workers}"
    )
    return ("--quick " if args.quick else "") + (f"--coins {args.coins} " if args.coins else "") + flags


def main(argv: list[str] | None = None) -> int:
    from crypto_ml.data.loader import CryptoLoader

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check that it works: 4 coins, --period 60 --folds 3 --days 30, 1 LSTM epoch",
    )
    parser.add_argument("--coins", type=int, default=None, help="the first N bundled coins (default: all)")
    parser.add_argument("--models", default="naive,drift,ar", help="models of the backtests")
    parser.add_argument("--period", type=int, default=90)
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--days", type=int, default=90, help="the strategy backtest's window (days)")
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--lstm-epochs", type=int, default=10, help="epochs of each LSTM training")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated: {', '.join(KINDS)}")
    parser.add_argument(
        "--min-rows", type=int, default=60, help="train the coins with at least this many days"
    )
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    redis_url = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    parser.add_argument(
        "--redis", default=redis_url, help="broker and result backend (a key prefix of its own per run)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the Markdown table (default results/heavy.md, with --quick results/heavy_quick.md)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.coins = args.coins or 4
        args.period, args.folds, args.days, args.lstm_epochs = 60, 3, 30, 1
    args.out = args.out or OUT.with_name("heavy_quick.md" if args.quick else OUT.name)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in args.kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; valid: {', '.join(KINDS)}")
    counts = [int(v) for v in args.workers.split(",")]
    loader = CryptoLoader()
    names = loader.get_crypto_names()
    args.coin_ids = None if args.coins is None else names[: args.coins]
    lengths = {c: len(loader.get_prices(c)[0]) for c in (args.coin_ids or names)}
    args.train_coins = [c for c, rows in lengths.items() if rows >= args.min_rows]
    args.as_of = str(max(loader.get_prices(c)[1][-1] for c in args.train_coins))[:10]
    logs = Path(tempfile.mkdtemp(prefix="bench_heavy_"))  # the workers' logs and project databases
    _warm_up(args, loader)
    runs, loads = {}, {}
    for n in counts:
        loads[n] = os.getloadavg()[0]
        runs[n] = run(n, args, loader, logs)
    compared = {}
    for kind in args.kinds:
        for n in counts[1:]:
            compared[kind] = _check_same(kind, runs[n][kind][0], runs[counts[0]][kind][0])
    base = counts[0]
    lines = [
        "# Heavy work on the engine: backtest, strategy backtest and training, 1 vs 2 workers",
        "",
        f"Command: `python benchmarks/bench_heavy.py {_settings(args)}`",
        "",
        (
            "Each worker `celery -A crypto_ml worker -Q heavy,train -c 1`, `CRYPTO_ML_TF_THREADS=1`, warm "
            "(`CRYPTO_ML_ENGINE_PRELOAD`: data, scikit-learn, TensorFlow loaded before the clock starts; the "
            "caller's own one-off costs paid by a small local run first), Redis broker "
            "and results, a SQLite project database per worker count (training saves and evaluates "
            "versions); the caller reads the bundled data and sends each backtest unit's closes. "
            f"Training as of {args.as_of}, "
            f"coins with at least {args.min_rows} days."
        ),
        (
            f"Box: {os.cpu_count()} cores, shared with other sessions (load average: the box's 1-minute "
            "load when the worker count's runs started, other sessions included); the runs are side by side "
            "in one invocation, so read the ratio."
        ),
        "",
        "| kind | units | workers | wall (s) | CPU-s (workers + caller) | speed-up | load average |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(
            f"| {kind} | {_units(kind, args, loader)} | {n} | {runs[n][kind][1]:.1f} "
            f"| {runs[n][kind][2]:.1f} | "
            f"{runs[base][kind][1] / runs[n][kind][1]:.2f}x | {loads[n]:.1f} |"
            for kind in args.kinds
            for n in counts
        ),
        "",
        "Same answers from every worker count: " + "; ".join(f"{k}: yes ({v})" for k, v in compared.items()),
        "",
        *([QUICK_NOTE, ""] if args.quick else []),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
