"""Summarise a py-spy ``--format raw`` profile of a stack component (collapsed stacks, one
``frame;frame;... count`` per line): where the samples go, by category or below a frame.

    py-spy record -p <pid> --subprocesses --rate 40 --format raw -o trig.raw --duration 300 --nonblocking
    python benchmarks/orchestration/pyspy_summary.py trig.raw                  # samples by category
    python benchmarks/orchestration/pyspy_summary.py trig.raw --under make_client --depth 6

py-spy samples threads that are not sleeping: on a loaded box a runnable thread waiting for a core
counts too, so read the shares, not the seconds. py-spy is a diagnostic, not a dependency of the
project: install it apart (``python -m venv /tmp/tools && /tmp/tools/bin/pip install py-spy``).
"""

from __future__ import annotations

import argparse
import collections
import re

#: (category, substring of any frame of the stack), first match wins.
CATEGORIES = (
    ("idle (selector)", "EpollSelector.select"),
    ("triggerer: in-process Execution API first request (Cadwyn)", "_cadwyn_initialize"),
    ("triggerer: in-process Execution API client build", "make_client"),
    ("crypto_ml code", "crypto_ml/"),
    ("imports", "_find_and_load ("),
    ("Airflow task process", "task_runner"),
    ("trigger runner", "TriggerRunner."),
    ("triggerer supervisor", "TriggerRunnerSupervisor"),
    ("LocalExecutor workers (task supervisors)", "LocalExecutor._spawn_worker"),
    ("scheduler loop", "SchedulerJobRunner"),  # last: a forked task process's stack starts there
)


def _name(frame: str) -> str:
    return re.sub(r" \(.*?\)$", "", frame)


def read(path: str):
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip().rpartition(" ")
        if count.isdigit():
            yield stack.split(";"), int(count)


def categories(path: str) -> tuple[int, collections.Counter]:
    out: collections.Counter = collections.Counter()
    total = 0
    for frames, n in read(path):
        total += n
        joined = ";".join(frames)
        out[next((c for c, key in CATEGORIES if key in joined), "other")] += n
    return total, out


def under(path: str, needle: str, depth: int) -> tuple[int, collections.Counter]:
    out: collections.Counter = collections.Counter()
    total = 0
    for frames, n in read(path):
        hits = [i for i, f in enumerate(frames) if needle in f]
        if hits:
            total += n
            out[" > ".join(_name(f) for f in frames[hits[0] + 1 : hits[0] + 1 + depth])] += n
    return total, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw")
    parser.add_argument("--under", help="break down the samples below the first frame containing this")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.under:
        total, counts = under(args.raw, args.under, args.depth)
        print(f"{total} samples below {args.under!r}")
    else:
        total, counts = categories(args.raw)
        print(f"{total} samples")
    for key, n in counts.most_common(args.top):
        print(f"{n:7d} {100 * n / max(total, 1):5.1f}%  {key[:300]}")


if __name__ == "__main__":
    main()
