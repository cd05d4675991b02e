"""The daily poll on a live market: API calls, seconds and rows per poll for 10, 100 and 400 symbols,
and the parse time of the DAG files before and after the live-market work.

The exchange is the local Binance-compatible server (``crypto_ml.testing.fake_exchange``) with
Binance's published request-weight limit (6,000 a minute; klines weigh 2, exchangeInfo 20), and
ccxt's own rate limiter at Binance's setting (``rateLimit`` 50 ms between requests) — so the
seconds are what the throttle costs, as against the real exchange, minus the network's latency.
Each size runs two polls through :func:`crypto_ml.pipeline.steps.poll` into a fresh SQLite project DB:
the first (a new deployment: every coin's 400 days of history) and the next day's (incremental).

    python benchmarks/bench_market.py [--sizes 10,100,400] [--before <git rev>]

writes ``benchmarks/results/market_poll.md``. ``--before`` (default: the commit before this work)
is checked out in a temporary ``git worktree`` to time its DAG files side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "6ba2e68"  # the last commit before the live-market work (issue 10)

PARSE = r"""
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
total = time.perf_counter() - t
print("RESULT=" + json.dumps({"total": total, "errors": len(bag.import_errors),
      "files": {s.file.rsplit('/', 1)[-1]: s.duration.total_seconds() for s in bag.dagbag_stats}}))
"""


def parse_times(dags: Path, repeats: int = 5) -> dict:
    """Median DagBag fill time and per-file parse time of ``dags`` (fresh process each time)."""
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "AIRFLOW_HOME": home}
            env.pop("AIRFLOW_CONN_CRYPTO_ML_MARKET", None)
            out = subprocess.run(
                [sys.executable, "-c", PARSE, str(dags)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=dags.parent,
            )
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT="))
        runs.append(json.loads(line[len("RESULT=") :]))
    files = sorted(runs[0]["files"])
    return {
        "errors": max(r["errors"] for r in runs),
        "files": {f: statistics.median(r["files"][f] for r in runs) for f in files},
    }


def bench_poll(n: int) -> dict:
    from crypto_ml import storage
    from crypto_ml.markets import MarketConfig
    from crypto_ml.pipeline.steps import poll
    from crypto_ml.testing.fake_exchange import FakeExchange, FakeMarket

    day0 = dt.date(2026, 11, 20)
    markets = [
        FakeMarket(f"C{k:04d}", first=day0 - dt.timedelta(days=400), price=10.0 + k, seed=k) for k in range(n)
    ]
    out = {"symbols": n}
    with tempfile.TemporaryDirectory() as tmp, FakeExchange(markets, today=day0) as ex:
        url = f"sqlite:///{tmp}/project.db"
        from urllib.parse import quote

        # set as a deployment sets it: in the environment, which the DAG parser reads too
        os.environ["AIRFLOW_CONN_CRYPTO_ML_MARKET"] = (
            f"crypto-ml-market://binance?symbols={','.join(m.symbol for m in markets)}"
            f"&api_url={quote(ex.api_url, safe='')}"
        )
        market = MarketConfig.from_env_value(os.environ["AIRFLOW_CONN_CRYPTO_ML_MARKET"])
        assert market.api_url == ex.api_url
        for label, day in (("first", day0 - dt.timedelta(days=1)), ("next day", day0)):
            ex._today = day + dt.timedelta(days=1)
            now = dt.datetime.combine(ex._today, dt.time(12), tzinfo=dt.UTC)
            ex.reset_counts()
            before = storage.count_rows("prices", url=url) if label != "first" else 0
            started = time.perf_counter()
            polled = poll(day, market=market, url=url, now=now)
            seconds = time.perf_counter() - started
            rows = storage.count_rows("prices", url=url) - before
            assert not polled["failed_coins"], polled["failed_coins"]
            assert len(polled["coins"]) == n
            out[label] = {
                "seconds": seconds,
                "requests": sum(ex.requests.values()),
                "klines": sum(ex.klines_calls.values()),
                "rows": rows,
                "api_calls": polled["api_calls"],
            }
        storage.dispose_engine(url)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,400")
    ap.add_argument("--before", default=BEFORE)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        r = bench_poll(n)
        print(f"{n} symbols: {json.dumps(r)}", flush=True)
        results.append(r)

    wt = Path(tempfile.mkdtemp(prefix="crypto-ml-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(wt), args.before],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        before = parse_times(wt / "dags")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)
    after = parse_times(ROOT / "dags")
    print(f"parse before: {before}\nparse after: {after}", flush=True)

    lines = [
        "# Daily poll on a live market (ccxt → local Binance-compatible exchange)",
        "",
        f"Command: `python benchmarks/bench_market.py --sizes {args.sizes}` "
        f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores). Exchange limits as "
        "Binance publishes them: 6,000 request weight a minute (never reached here), and ccxt's "
        "throttle at Binance's `rateLimit` of 50 ms between requests. History: 400 days per symbol.",
        "",
        "| symbols | poll | HTTP requests | of which klines | rows stored | seconds | s per symbol |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for label in ("first", "next day"):
            p = r[label]
            lines.append(
                f"| {r['symbols']} | {label} | {p['requests']} | {p['klines']} | {p['rows']} | "
                f"{p['seconds']:.1f} | {p['seconds'] / r['symbols']:.3f} |"
            )
    lines += [
        "",
        "An incremental day asks one klines page per symbol (plus one `exchangeInfo`): the rows "
        "fetched are exactly the new closed candles, one per symbol. The first poll of a symbol "
        "asks for its whole history (1,000 candles a page).",
        "",
        "## Parse time of the DAG files (median of 5 fresh processes; `DagBag` file stats)",
        "",
        f"| file | before ({args.before}) | after |",
        "|---|---:|---:|",
    ]
    for f in sorted(set(before["files"]) | set(after["files"])):
        b, a = before["files"].get(f), after["files"].get(f)
        lines.append(
            f"| {f} | {b * 1000:.0f} ms | {a * 1000:.0f} ms |" if b and a else f"| {f} | {b} | {a} |"
        )
    lines += ["", f"Import errors: before {before['errors']}, after {after['errors']}.", ""]
    path = ROOT / "benchmarks" / "results" / "market_poll.md"
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
