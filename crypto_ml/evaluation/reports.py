"""Markdown reports of the evaluation: the accuracy backtest's tables and the strategy backtest's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from crypto_ml.evaluation.backtest import BacktestResult
    from crypto_ml.evaluation.strategy import StrategyReport


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]

    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return "nan" if not math.isfinite(v) else floatfmt.format(v)
        if isinstance(v, pd.Timestamp):
            return str(v.date())
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def format_report(result: BacktestResult, *, per_coin: bool = True) -> str:
    """Aggregate table, per-coin table and the skipped list, as Markdown."""
    p = result.params
    if p.get("start") is not None:
        window = f"{p['start']} .. {p.get('end') or 'the last close'}"
    elif p.get("end") is not None:
        window = f"last {p.get('period')} days up to {p['end']}"
    else:
        window = f"last {p.get('period')} days"
    parts = [
        f"Walk-forward backtest: {window}, {p.get('folds')} folds, "
        f"horizon {p.get('horizon')} days, expanding training window.",
        "",
        "## Aggregate, like-for-like (coins where every model ran; mean over coins of the "
        "per-coin means over folds)",
        "",
        markdown_table(result.aggregate()),
        "",
        "## Aggregate over every coin each model could run on",
        "",
        markdown_table(result.aggregate(common=False)),
    ]
    coverage = result.coverage()
    if not coverage.empty:
        parts += [
            "",
            "## Prediction intervals: coverage (% of actual closes inside), width and Winkler "
            "interval score (% of the last close; lower is better), every forecast day of every fold",
            "",
            markdown_table(coverage),
        ]
    if per_coin:
        parts += ["", "## Per coin", "", markdown_table(result.summary)]
    if not result.skipped.empty:
        skipped = result.skipped.copy()
        skipped["fold"] = skipped["fold"].map(lambda v: "all" if v is None or pd.isna(v) else int(v))
        parts += ["", f"## Skipped ({len(skipped)})", "", markdown_table(skipped)]
    return "\n".join(parts)


def format_strategy_report(report: StrategyReport) -> str:
    """Markdown: parameters, the model x rule table, timings."""
    p = report.params
    table = report.summary.copy()
    percent = ("total_return", "ann_volatility", "max_drawdown", "hit_rate", "vs_buy_and_hold", "vs_no_trade")
    for col in percent:
        table[col] = table[col].map(lambda v: "n/a" if not math.isfinite(v) else f"{v * 100:+.2f}%")
    table["sharpe"] = table["sharpe"].map(lambda v: "n/a" if not math.isfinite(v) else f"{v:.2f}")
    table["turnover"] = table["turnover"].map(lambda v: f"{v:.2f}x")
    table["fees"] = table["fees"].map(lambda v: f"{v:,.0f}")
    lines = [
        f"Strategy backtest: {p.get('coins')} coins, {p.get('start')} .. {p.get('end')} "
        f"({p.get('days')} days), "
        f"horizon {p.get('horizon')} days, refit every {p.get('refit_every')} days (updated daily), "
        f"capital {p.get('capital'):,.0f} USD, execution costs {p.get('fee_bps'):g} bps fee + "
        f"{p.get('slippage_bps'):g} bps slippage per side.",
        "",
        *(
            [f"Coins without a close in the window (not traded): {', '.join(p['coins_without_closes'])}.", ""]
            if p.get("coins_without_closes")
            else []
        ),
        "Rules: " + "; ".join(f"`{k}` = {v}" for k, v in (p.get("rules") or {}).items()),
        "",
        markdown_table(table),
        "",
        "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()),
    ]
    return "\n".join(lines)


def write_strategy_report(
    report: StrategyReport, out: str | Path, *, stem: str = "strategy"
) -> dict[str, Path]:
    """Write ``<stem>.md`` (report), ``<stem>_equity.png``, ``<stem>_orders.csv``,
    ``<stem>_per_coin.csv`` and ``<stem>_equity.csv`` into ``out``; returns the paths."""
    from crypto_ml.evaluation.plots import plot_equity

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / f"{stem}.md",
        "plot": plot_equity(report, out / f"{stem}_equity.png"),
        "orders": out / f"{stem}_orders.csv",
        "per_coin": out / f"{stem}_per_coin.csv",
        "equity": out / f"{stem}_equity.csv",
    }
    report.orders.to_csv(paths["orders"], index=False)
    report.per_coin.to_csv(paths["per_coin"], index=False)
    report.equity.to_csv(paths["equity"], index_label="date")
    paths["report"].write_text(format_strategy_report(report) + "\n")
    return paths
