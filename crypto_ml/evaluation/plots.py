"""PNG plots of the evaluation: forecasts against the actual closes, and equity curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crypto_ml.evaluation.backtest import BacktestResult
    from crypto_ml.evaluation.strategy import StrategyReport


def plot_forecasts(result: BacktestResult, path: str | Path, *, max_coins: int = 12) -> Path:
    """PNG of actual closes vs each fold's forecast, one panel per coin (the first ``max_coins``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fc = result.forecasts
    coins = list(dict.fromkeys(fc["coin"]))[:max_coins] if not fc.empty else []
    ncols = 1 if len(coins) <= 1 else 2 if len(coins) <= 4 else 3
    nrows = max(1, math.ceil(len(coins) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 3.2 * nrows), squeeze=False)
    colors = {}
    for ax, coin in zip(axes.flat, coins):
        sub = fc[fc["coin"] == coin]
        actual = sub.drop_duplicates("date").sort_values("date")
        ax.plot(actual["date"], actual["actual"], color="black", lw=1, label="actual")
        for (model, _fold), seg in sub.groupby(["model", "fold"], sort=False):
            color = colors.setdefault(model, f"C{len(colors)}")
            first = not any(line.get_label() == model for line in ax.lines)
            ax.plot(seg["date"], seg["forecast"], color=color, lw=1.2, label=model if first else "_")
        ax.set_title(coin)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(coins) :]:
        ax.axis("off")
    if not coins:
        axes.flat[0].text(0.5, 0.5, "no forecasts (every coin skipped)", ha="center")
    fig.suptitle("Walk-forward backtest: actual vs forecast")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_equity(report: StrategyReport, path: str | Path) -> Path:
    """PNG of every run's equity curve with buy-and-hold and no-trade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, col in enumerate(report.equity.columns):
        style = {"buy-and-hold": dict(color="black", lw=1.6), "no-trade": dict(color="grey", lw=1.2, ls="--")}
        line = style.get(col, dict(lw=1.0, color=f"C{i % 10}"))
        ax.plot(report.equity.index, report.equity[col], label=col, **line)
    ax.set_ylabel("equity (USD)")
    ax.set_yscale("log")
    p = report.params
    ax.set_title(
        f"Strategy backtest, {p.get('coins')} coins, {p.get('start')} .. {p.get('end')}, "
        f"{p.get('fee_bps'):g}+{p.get('slippage_bps'):g} bps per side"
    )
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
