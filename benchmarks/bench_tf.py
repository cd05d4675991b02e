"""TensorFlow as a good neighbour: LSTM epochs/s per worker, peak RSS with warm LSTMs, and the cost of
the LSTM's walk-forward evaluation of every bundled coin.

    python benchmarks/bench_tf.py --quick     # a few seconds of each part (checks the script works)
    python benchmarks/bench_tf.py             # the measurements (a quiet box: ~15 min)
    python benchmarks/bench_tf.py --all       # + the LSTM evaluation of every bundled coin on 2 workers

(a) **Epochs per second per worker**: 1 and 2 worker processes train the talk's LSTM (50 -> 100 ->
    Dense, window 50, batch 64) on bitcoin's whole history at the same time (a file barrier starts
    them together), once with the engine worker's thread setting (``CRYPTO_ML_TF_THREADS`` = CPUs /
    processes, what :func:`crypto_ml.engine.worker.tf_threads_for` gives a ``-c N`` worker) and once
    with TensorFlow's defaults (unset). Each process is a fresh interpreter, as a pool child is, and
    reports the threads read back from TensorFlow.
(b) **Peak RSS per worker with warm LSTMs**: one process (``CRYPTO_ML_TF_THREADS=1``) fits an LSTM
    per bundled coin (1 epoch: the size of a warm model does not depend on it), serves one forecast
    from it (which traces its prediction function, as serving does) and keeps it in a
    :class:`~crypto_ml.engine.cache.ModelCache`; at 20, 50 and all (94 of the 97 coins have enough
    history) models it reads ``VmHWM`` and
    ``VmRSS`` from ``/proc/<pid>/status`` and the cache's estimated bytes
    (:func:`~crypto_ml.engine.cache.model_nbytes`), so the estimate can be checked against RSS.
(c) **The LSTM's evaluation of every bundled coin**: the walk-forward backtest unit of the heavy
    queue (``backtest_unit``: ``--period`` days, ``--folds`` refits, ``--horizon``) is timed on a
    few coins in one process with 1 thread; the wall and CPU time of all coins at 2 workers is
    extrapolated per close of history (an LSTM fit is linear in its training windows) and scaled by
    (a)'s measured slow-down of 2 concurrent workers. ``--all`` then runs it to the end on 2 engine
    workers (``celery -A crypto_ml worker -Q heavy -c 1``, Redis, via ``benchmarks/bench_heavy.py``).

Results go to ``benchmarks/results/tf.md`` with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tf.md"
THREADS_ENV = "CRYPTO_ML_TF_THREADS"
TALK = {"window": 50, "units": (50, 100), "batch_size": 64}


def _status(pid: int | str = "self") -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` (bytes) from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
    return out


# -- children (one fresh interpreter each) ----------------------------------------------------------
def child_epochs(barrier: str, epochs: int) -> dict:
    """Warm up (import, trace), wait for the barrier, time one fit of ``epochs`` epochs."""
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.forecasting.lstm import LSTMForecaster, import_keras, tf_thread_settings

    import_keras()
    closes, _ = CryptoLoader().get_prices("bitcoin")
    LSTMForecaster(**TALK, epochs=1).fit(closes)  # traces the shared train step
    Path(f"{barrier}.{os.getpid()}").touch()
    while not Path(barrier).exists():
        time.sleep(0.01)
    cpu0, t0 = time.process_time(), time.perf_counter()
    LSTMForecaster(**TALK, epochs=epochs).fit(closes)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "pid": os.getpid(),
        "epochs": epochs,
        "wall": wall,
        "cpu": cpu,
        "threads": tf_thread_settings(),
        "windows": len(closes) - TALK["window"] - 1,
    }


def child_warm(counts: list[int]) -> dict:
    """Warm LSTMs one coin after the other; RSS and the cache's bytes at each count."""
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.forecasting.lstm import LSTMForecaster, import_keras

    import_keras()
    loader = CryptoLoader()
    cache = ModelCache(maxsize=10_000, max_bytes=None)
    points, refused, base = [], [], _status()
    wanted = sorted(c for c in counts if c > 0)  # 0: every coin that has an LSTM
    for coin in loader.get_crypto_names():
        if 0 not in counts and len(points) == len(wanted):
            break
        closes, _ = loader.get_prices(coin)
        try:
            model = LSTMForecaster(**TALK, epochs=1).fit(closes)
            model.predict_with_intervals(7, (0.8, 0.95))
        except ValueError as exc:  # too short or degenerate: reported, not counted
            refused.append(f"{coin}: {exc}")
            continue
        cache.put(coin, model)
        if len(cache) in wanted:
            points.append({"models": len(cache), **_status(), "cache_bytes": cache.nbytes})
    if 0 in counts and (not points or points[-1]["models"] != len(cache)):
        points.append({"models": len(cache), **_status(), "cache_bytes": cache.nbytes})
    missed = [c for c in wanted if c > len(cache)]
    return {"pid": os.getpid(), "base": base, "points": points, "refused": refused, "missed": missed}


def child_eval(coins: list[str], period: int, folds: int, horizon: int) -> dict:
    """The heavy queue's LSTM backtest unit of each coin, timed (wall, CPU)."""
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.evaluation.backtest import BacktestResult
    from crypto_ml.evaluation.units import backtest_unit, backtest_units
    from crypto_ml.forecasting.lstm import import_keras

    import_keras()
    loader = CryptoLoader()
    rows = []
    for unit in backtest_units(coins, ["lstm"], loader=loader, period=period, folds=folds, horizon=horizon):
        if isinstance(unit, BacktestResult):
            rows.append({"coin": unit.skipped["coin"].iloc[0], "skipped": True})
            continue
        coin = unit.pop("coin")
        cpu0, t0 = time.process_time(), time.perf_counter()
        answer = backtest_unit(coin, unit.pop("model"), unit.pop("closes"), unit.pop("dates"), **unit)
        rows.append(
            {
                "coin": coin,
                "wall": time.perf_counter() - t0,
                "cpu": time.process_time() - cpu0,
                "folds": len(answer["folds"]),
                "skipped_folds": len(answer["skipped"]),
            }
        )
    return {"rows": rows}


def _run_children(
    kind: str, payloads: list[dict], threads: str | None, barrier: str | None = None
) -> list[dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop(THREADS_ENV, None)
    if threads is not None:
        env[THREADS_ENV] = threads
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", kind, json.dumps(p)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in payloads
    ]
    if barrier is not None:
        while sum(1 for p in procs if Path(f"{barrier}.{p.pid}").exists()) < len(procs):
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.05)
        Path(barrier).touch()
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"bench_tf child {kind} exited with {p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


# -- the parts ----------------------------------------------------------------------------------------
def part_epochs(epochs: int, tmp: Path) -> list[dict]:
    from crypto_ml.engine.worker import tf_threads_for

    rows = []
    configs = [
        (1, "worker setting", str(tf_threads_for(1))),
        (1, "1 thread", "1"),
        (1, "TF default", None),
        (2, "worker setting", str(tf_threads_for(2))),
        (2, "TF default", None),
    ]
    for n, label, threads in configs:
        barrier = str(tmp / f"go-{n}-{label.replace(' ', '_')}")
        results = _run_children("epochs", [{"barrier": barrier, "epochs": epochs}] * n, threads, barrier)
        per = [r["epochs"] / r["wall"] for r in results]
        rows.append(
            {
                "workers": n,
                "setting": label,
                "env": threads or "unset",
                "windows": results[0]["windows"],
                "read_back": results[0]["threads"],
                "eps_per_worker": sum(per) / n,
                "eps_total": sum(per),
                "cpu_per_epoch": sum(r["cpu"] for r in results) / (n * epochs),
                "load": os.getloadavg()[0],
            }
        )
        print(f"(a) {n} worker(s), {label}: {sum(per) / n:.3f} epochs/s per worker", flush=True)
    return rows


def part_warm(counts: list[int]) -> dict:
    (result,) = _run_children("warm", [{"counts": counts}], "1")
    for p in result["points"]:
        print(f"(b) {p['models']} warm LSTMs: VmHWM {p['VmHWM'] / 2**20:.0f} MB", flush=True)
    return result


def part_eval(coins: list[str], args: argparse.Namespace) -> dict:
    (result,) = _run_children(
        "eval", [{"coins": coins, "period": args.period, "folds": args.folds, "horizon": args.horizon}], "1"
    )
    return result


def estimate(evald: dict, epochs_rows: list[dict], loader) -> dict:
    """All coins' LSTM evaluation at 2 workers, from the measured coins' CPU per close of history."""
    measured = [r for r in evald["rows"] if not r.get("skipped")]
    lengths = {c: len(loader.get_prices(c)[0]) for c in loader.get_crypto_names()}
    per_close_cpu = sum(r["cpu"] for r in measured) / sum(lengths[r["coin"]] for r in measured)
    per_close_wall = sum(r["wall"] for r in measured) / sum(lengths[r["coin"]] for r in measured)
    one = next(r for r in epochs_rows if r["workers"] == 1 and r["env"] == "1")
    two = next(r for r in epochs_rows if r["workers"] == 2 and r["env"] == "1")
    slowdown = one["eps_per_worker"] / two["eps_per_worker"]  # alone at 1 thread vs each of 2 at 1 thread
    total = sum(lengths.values())
    return {
        "coins": len(lengths),
        "closes": total,
        "cpu_h": per_close_cpu * total / 3600,
        "wall_h_2": per_close_wall * total * slowdown / 2 / 3600,
        "slowdown": slowdown,
    }


def run_all(args: argparse.Namespace, loader) -> tuple[float, float, int, int]:
    """The LSTM backtest of every bundled coin on 2 engine workers (bench_heavy's workers)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_heavy

    ns = argparse.Namespace(
        kinds=["backtest"],
        coin_ids=None,
        models=["lstm"],
        period=args.period,
        folds=args.folds,
        horizon=args.horizon,
        redis=args.redis,
        no_progress=False,
    )
    logs = Path(tempfile.mkdtemp(prefix="bench_tf_all_"))
    result, wall, cpu = bench_heavy.run(2, ns, loader, logs)["backtest"]
    return wall, cpu, len(result.folds), len(result.skipped)


# -- the report ---------------------------------------------------------------------------------------
MB = 2**20


def _report_epochs(args, rows) -> list[str]:
    lines = [
        (
            f"## (a) LSTM training, epochs per second per worker ({args.epochs} epochs on bitcoin's whole "
            f"history, {rows[0]['windows']} windows, the talk's network)"
        ),
        "",
        (
            "| workers | threads | CRYPTO_ML_TF_THREADS | TF read back (intra, inter) "
            "| epochs/s per worker | epochs/s all workers | CPU-s per epoch | load |"
        ),
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        rb = r["read_back"]
        lines.append(
            f"| {r['workers']} | {r['setting']} | {r['env']} | {rb['intra_op']}, {rb['inter_op']} "
            f"| {r['eps_per_worker']:.3f} | {r['eps_total']:.3f} | {r['cpu_per_epoch']:.2f} "
            f"| {r['load']:.1f} |"
        )
    return [*lines, "", "0 read back is TensorFlow's default (every core, for each process).", ""]


def _report_warm(warm) -> list[str]:
    base = warm["base"]
    lines = [
        "## (b) Peak RSS of one worker process holding warm LSTMs",
        "",
        (
            f"Before the first model (TensorFlow imported): VmHWM {base['VmHWM'] / MB:.0f} MB, "
            f"VmRSS {base['VmRSS'] / MB:.0f} MB."
        ),
        "",
        "| warm LSTMs | VmHWM (MB) | VmRSS (MB) | cache's estimate (MB) |",
        "|---:|---:|---:|---:|",
    ]
    pts = warm["points"]
    lines += [
        f"| {p['models']} | {p['VmHWM'] / MB:.0f} | {p['VmRSS'] / MB:.0f} | {p['cache_bytes'] / MB:.1f} |"
        for p in pts
    ]
    if len(pts) >= 2:
        step = pts[-1]["models"] - pts[0]["models"]
        slope = (pts[-1]["VmRSS"] - pts[0]["VmRSS"]) / step
        est_slope = (pts[-1]["cache_bytes"] - pts[0]["cache_bytes"]) / step
        lines += [
            "",
            (
                f"RSS per further warm LSTM: {slope / MB:.2f} MB measured, {est_slope / MB:.2f} MB "
                "estimated by the cache (`model_nbytes`)."
            ),
        ]
    if warm["missed"]:
        lines += [
            "",
            (
                f"Not reached: {', '.join(map(str, warm['missed']))} warm LSTMs (only "
                f"{pts[-1]['models'] if pts else 0} bundled coins have enough history for one)."
            ),
        ]
    if warm["refused"]:
        lines += ["", f"Coins without an LSTM ({len(warm['refused'])}): " + "; ".join(warm["refused"])]
    return [*lines, ""]


def _report_eval(args, evald, est, everything) -> list[str]:
    lines = [
        (
            f"## (c) The LSTM's walk-forward evaluation (period {args.period}, {args.folds} folds = "
            f"refits, horizon {args.horizon}, the registry's LSTM: {args.eval_epochs} epochs)"
        ),
        "",
        "| coin | wall (s) | CPU-s | folds | skipped folds |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in evald["rows"]:
        lines.append(
            f"| {r['coin']} | skipped (too short) | | | |"
            if r.get("skipped")
            else f"| {r['coin']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['folds']} | {r['skipped_folds']} |"
        )
    lines += [
        "",
        (
            f"Estimate for all {est['coins']} bundled coins ({est['closes']} closes; cost taken "
            f"as linear in a coin's closes): {est['cpu_h']:.2f} CPU-hours, {est['wall_h_2']:.2f} h "
            "wall on 2 workers of 1 thread (the measured wall per close, halved, times (a)'s "
            "slow-down of each of 2 concurrent 1-thread workers against one alone: "
            f"{est['slowdown']:.2f}x)."
        ),
    ]
    if everything is not None:
        wall, cpu, folds, skipped = everything
        lines += [
            "",
            (
                f"`--all`, measured on 2 engine workers: {wall / 3600:.2f} h wall, {cpu / 3600:.2f} "
                f"CPU-hours, {folds} folds, {skipped} skipped rows."
            ),
        ]
    return [*lines, ""]


def report(args, command: str, epochs_rows, warm, evald, est, everything) -> str:
    quick = " `--quick`: tiny sizes, checks the script only; not figures to quote." if args.quick else ""
    head = [
        "# TensorFlow as a good neighbour",
        "",
        f"Command: `{command}`",
        "",
        (
            f"Box: {os.cpu_count()} cores, shared with other sessions (load: the 1-minute load average when "
            f"each row ended, other sessions included).{quick}"
        ),
        "",
    ]
    return "\n".join(
        [
            *head,
            *_report_epochs(args, epochs_rows),
            *_report_warm(warm),
            *_report_eval(args, evald, est, everything),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the script works")
    parser.add_argument(
        "--all", action="store_true", help="also run every coin's LSTM evaluation on 2 workers"
    )
    parser.add_argument("--epochs", type=int, default=None, help="(a) epochs per timed fit (default 10)")
    parser.add_argument(
        "--warm",
        default=None,
        help="(b) counts of warm LSTMs, 'all': every coin that has one (default 20,50,all)",
    )
    parser.add_argument("--eval-coins", default=None, help="(c) coins to time (default 3 of the bundled)")
    parser.add_argument("--period", type=int, default=365)
    parser.add_argument("--folds", type=int, default=12)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument(
        "--redis",
        default=os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="--all: broker and result backend (a key prefix of its own)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.child:
        kind, payload = args.child
        work = {"epochs": child_epochs, "warm": child_warm, "eval": child_eval}[kind]
        print(json.dumps(work(**json.loads(payload))), flush=True)
        return 0
    if args.quick and args.all:
        parser.error("--quick and --all do not go together: --all runs every coin to the end")
    args.epochs = args.epochs or (2 if args.quick else 10)
    spec = args.warm or ("3,6" if args.quick else "20,50,all")
    counts = [0 if v.strip() == "all" else int(v) for v in spec.split(",")]
    from crypto_ml.data.loader import CryptoLoader

    loader = CryptoLoader()
    if any(c < 0 for c in counts) or max(counts) > len(loader.get_crypto_names()):
        parser.error(
            f"--warm: counts from 1 to {len(loader.get_crypto_names())} (one LSTM per bundled coin) or 'all'"
        )
    coins = (
        args.eval_coins.split(",")
        if args.eval_coins
        else ["ethereum-classic"]
        if args.quick
        else ["bitcoin", "ethereum", "dogecoin"]
    )
    if args.quick:
        args.period, args.folds = min(args.period, 30), min(args.folds, 2)
    args.eval_epochs = 10  # the LSTM's own default: the evaluation fits the registry's lstm as it is
    command = "python benchmarks/bench_tf.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="bench_tf_") as tmp:
        epochs_rows = part_epochs(args.epochs, Path(tmp))
    warm = part_warm(counts)
    evald = part_eval(coins, args)
    est = estimate(evald, epochs_rows, loader)
    print(f"(c) estimate: {est['cpu_h']:.2f} CPU-h, {est['wall_h_2']:.2f} h wall at 2 workers", flush=True)
    everything = run_all(args, loader) if args.all else None
    text = report(args, command.strip(), epochs_rows, warm, evald, est, everything)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
