"""What one heavy-sized message costs the broker and the result backend, with no work in it.

Starts ``celery -A benchmarks.broker_app worker`` (a no-op task, the engine's settings: JSON, late
acks, prefetch 1) on Redis with a key prefix of its own, sends N messages of a heavy unit's size
(a 1,800-day coin's closes and dates as JSON, about 60 kB) as one group, and times the send and the
whole round trip (sent, consumed, acknowledged, answered, gathered). The round trip per message, next
to the per-unit CPU cost of :mod:`bench_heavy`, bounds how many cores the heavy queue can keep busy:
``cores_max ~ unit_cost_s / broker_s_per_message`` (see benchmarks/results/scaling.md).

    python benchmarks/bench_broker.py                  # 400 messages, worker -c 1 and -c 2
    python benchmarks/bench_broker.py --messages 1000 --concurrency 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))
OUT = ROOT / "benchmarks" / "results" / "broker.md"


def payload(days: int = 1800) -> dict:
    closes = [round(1000.0 + 0.37 * i + (i % 17) * 1.3, 6) for i in range(days)]
    dates = [f"2013-{1 + (i // 28) % 12:02d}-{1 + i % 28:02d}" for i in range(days)]
    return {"coin": "bench", "model": "ar", "closes": closes, "dates": dates, "settings": {"folds": 12}}


def run(url: str, messages: int, concurrency: int) -> dict:
    prefix = f"bench_broker_{os.getpid()}_{secrets.token_hex(3)}:"
    queue = f"bench_{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "BENCH_BROKER_URL": url,
        "BENCH_PREFIX": prefix,
        "BENCH_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update({k: env[k] for k in ("BENCH_BROKER_URL", "BENCH_PREFIX", "BENCH_QUEUE")})
    sys.path.insert(0, str(ROOT))
    import importlib

    import benchmarks.broker_app as mod

    mod = importlib.reload(mod)
    worker = subprocess.Popen(
        [
            CELERY,
            "-A",
            "benchmarks.broker_app",
            "worker",
            "-Q",
            queue,
            "-c",
            str(concurrency),
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench{secrets.token_hex(3)}@%h",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (mod.app.control.inspect(timeout=1.0).ping() or {}):
            if time.monotonic() > deadline:
                raise TimeoutError("the benchmark worker did not answer a ping in 60 s")
        body = payload()
        size = len(json.dumps(body))
        mod.noop.delay({"closes": [1.0]}).get(timeout=30)  # warm: connections, pool
        from celery import group

        t0 = time.perf_counter()
        result = group(mod.noop.s(body) for _ in range(messages)).apply_async()
        sent = time.perf_counter() - t0
        answers = result.join_native(timeout=600)
        wall = time.perf_counter() - t0
        assert len(answers) == messages and all(a["n"] == len(body["closes"]) for a in answers)
        return {
            "concurrency": concurrency,
            "messages": messages,
            "kB": size / 1000,
            "send_s": sent,
            "wall_s": wall,
            "per_message_ms": 1000 * wall / messages,
            "messages_per_s": messages / wall,
            "MB_per_s": messages * size / wall / 1e6,
        }
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
        import redis

        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--redis", default=os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    ap.add_argument("--messages", type=int, default=400)
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = [run(args.redis, args.messages, int(c)) for c in args.concurrency.split(",")]
    load = os.getloadavg()[0]
    lines = [
        "# The broker's cost per heavy-sized message (no work in it)",
        "",
        f"Command: `python benchmarks/bench_broker.py --messages {args.messages} "
        f"--concurrency {args.concurrency}`",
        "",
        "Redis on 127.0.0.1 as broker and result backend, a no-op task with the engine's settings "
        "(JSON, late acks, prefetch 1); each message a 1,800-day coin's closes and dates "
        f"({rows[0]['kB']:.0f} kB of JSON), each answer about 2 kB; one group, gathered with `join_native`. "
        f"Box: {os.cpu_count()} cores, 1-minute load "
        f"{load:.1f} at the end.",
        "",
        "| worker concurrency | messages | send (s) | round trip (s) | per message (ms) | messages/s "
        "| MB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['concurrency']} | {r['messages']} | {r['send_s']:.2f} | {r['wall_s']:.2f} | "
        f"{r['per_message_ms']:.2f} | {r['messages_per_s']:.0f} | {r['MB_per_s']:.1f} |"
        for r in rows
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
