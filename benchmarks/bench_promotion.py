"""Champion / challenger on the bundled data: which versions of naive, drift, ar and linear the
promotion gate would promote, at which quarterly trainings.

For each coin (default bitcoin, ethereum, litecoin) and each quarter end from 2014-06-30 to the
data's last day, every model is evaluated as ``crypto_ml_train`` evaluates a new version
(:func:`crypto_ml.evaluation.promotion.evaluate_version`: fitted before the window, scored point
in time on the ``days`` days up to the training day, the shipped rule after 10 + 5 bps) and judged
by :func:`~crypto_ml.evaluation.promotion.verdict` against naive / no-trade with the default
margins (the champion of another model is not re-evaluated here: each row says whether that
version would clear the first gate). Writes ``benchmarks/results/promotion.md``.

    python benchmarks/bench_promotion.py
    python benchmarks/bench_promotion.py --coins bitcoin --models drift,ar --days 60
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crypto_ml.evaluation.promotion import PromotionSettings, evaluate_version, verdict  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", default="bitcoin,ethereum,litecoin")
    parser.add_argument("--models", default="naive,drift,ar,linear")
    parser.add_argument("--days", type=int, default=PromotionSettings().days)
    parser.add_argument("--first", default="2014-06-30", help="first training day (quarter ends from here)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "promotion.md"))
    args = parser.parse_args(argv)

    import pandas as pd

    from crypto_ml.data.loader import CryptoLoader

    settings = PromotionSettings(days=args.days)
    loader = CryptoLoader()
    rows, began = [], time.perf_counter()
    for coin in args.coins.split(","):
        closes, dates = loader.get_prices(coin)
        closes = [float(c) for c in closes]
        dates = [str(d)[:10] for d in dates]
        days = pd.date_range(args.first, dates[-1], freq="QE").strftime("%Y-%m-%d").tolist() + [dates[-1]]
        for as_of in days:
            if as_of < dates[0]:
                continue
            for model in args.models.split(","):
                ev = evaluate_version(coin, model, as_of, closes, dates, days=settings.days)
                out = verdict(ev, settings)
                strat = ev.get("strategy") or {}
                band = (ev.get("intervals") or {}).get("80") or {}
                rows.append(
                    {
                        "coin": coin,
                        "as_of": as_of,
                        "model": model,
                        "status": out["status"],
                        "mase_vs_naive": ev.get("mase_vs_naive"),
                        "return": strat.get("total_return"),
                        "drawdown": strat.get("max_drawdown"),
                        "hit_rate": strat.get("hit_rate"),
                        "trades": strat.get("trades"),
                        "coverage80": band.get("coverage"),
                        "width80": band.get("median_width_pct"),
                        "reason": out["reason"],
                    }
                )
                print(f"{coin} {as_of} {model}: {out['reason']}", flush=True)
    seconds = time.perf_counter() - began
    frame = pd.DataFrame(rows)
    promoted = frame[frame["status"] == "promoted"]
    per_model = frame.groupby("model", sort=False).agg(
        trainings=("status", "size"),
        promoted=("status", lambda s: int((s == "promoted").sum())),
        median_mase=("mase_vs_naive", "median"),
        median_return=("return", "median"),
    )
    lines = [
        "# Promotion gate on the bundled data",
        "",
        (
            f"`python benchmarks/bench_promotion.py --coins {args.coins} --models {args.models} "
            f"--days {args.days}` ({seconds:.0f} s, Python {platform.python_version()})."
        ),
        "",
        (
            f"Settings: {settings.to_json()} (the defaults of `CRYPTO_ML_PROMOTION_*`). Each row is one "
            "quarterly training evaluated on the days before it, judged against naive / no-trade."
        ),
        "",
        "## Per model",
        "",
        per_model.reset_index().to_markdown(index=False, floatfmt=".3f"),
        "",
        "## Versions that would be promoted",
        "",
        promoted.to_markdown(index=False, floatfmt=".3f") if len(promoted) else "None.",
        "",
        "## Every training",
        "",
        frame.to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
