"""Loader speed: full load of the bundled dataset and per-coin get_df after load.

    python benchmarks/bench_loader.py [--repeat 7] [--synthetic 1000]

Targets (issue "Foundation"): full load <= 1 s, per-coin get_df <= 5 ms after load. Figures are
medians over --repeat runs in this process, plus one cold run in a fresh interpreter (imports
included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--synthetic", type=int, default=1000)
    args = parser.parse_args()

    cold = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t=time.perf_counter(); from crypto_ml.data.loader import CryptoLoader; "
            "CryptoLoader(); print(time.perf_counter()-t)",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    from crypto_ml.data.loader import CryptoLoader

    loads = timed(CryptoLoader, args.repeat)
    loader = CryptoLoader()
    names = loader.get_crypto_names()
    per_coin = timed(lambda: [loader.get_df(n) for n in names], args.repeat)
    per_prices = timed(lambda: [loader.get_prices(n) for n in names], args.repeat)
    pit = timed(lambda: [loader.get_df(n, as_of="2017-01-01") for n in names], args.repeat)

    rows = [
        ("full load, bundled (97 coins, 77,110 rows)", statistics.median(loads), "<= 1 s"),
        ("full load, cold process incl. imports", float(cold.stdout), ""),
        ("get_df per coin", statistics.median(per_coin) / len(names), "<= 5 ms"),
        ("get_df(as_of=...) per coin", statistics.median(pit) / len(names), ""),
        ("get_prices per coin", statistics.median(per_prices) / len(names), ""),
    ]
    if args.synthetic:
        started = time.perf_counter()
        big = CryptoLoader(synthetic=args.synthetic)
        big_load = time.perf_counter() - started
        big_names = big.get_crypto_names()
        big_get = timed(lambda: [big.get_df(n) for n in big_names], 3)
        rows += [
            (f"full load + {args.synthetic} synthetic coins ({len(big.frame()):,} rows)", big_load, ""),
            (f"get_df per coin over {len(big_names)} coins", statistics.median(big_get) / len(big_names), ""),
        ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'time':>10}  target")
    for name, seconds, target in rows:
        shown = f"{seconds * 1000:8.2f} ms" if seconds < 1 else f"{seconds:8.2f} s "
        print(f"{name.ljust(width)}  {shown:>10}  {target}")


if __name__ == "__main__":
    main()
