"""The PNG of one coin: recent closes, forecast paths with their intervals, and trade requests."""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Sequence
from typing import Any

from crypto_ml.engine.prediction import PredictionRecord

#: Interval levels drawn as bands around a forecast path (widest first) and their opacity.
BAND_LEVELS = (("95", 0.10), ("80", 0.20))
PALETTE = ["#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#9333ea", "#ea580c"]


def finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number, else None (a gap in a line, "—" in a table)."""
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _clip_bands(
    ax: Any, closes: Sequence[tuple[dt.date, float]], predictions: Sequence[PredictionRecord]
) -> None:
    """Keep the closes and forecast paths readable: the y-axis spans them (plus a margin of 60 %
    of their range), and a band reaching far beyond (a +1,000 % bound) is cut at the edge."""
    values = [c for _, c in closes] + [v for p in predictions for v in (p.last_close, *p.values)]
    values = [v for v in (finite(x) for x in values) if v is not None]
    if not values:
        return
    lo, hi = min(values), max(values)
    margin = 0.6 * (hi - lo) or 0.1 * abs(hi) or 1.0
    low, high = ax.get_ylim()
    floor = 0.0 if lo > 0 else lo - margin  # prices: never below zero
    ax.set_ylim(max(low, lo - margin, floor), min(high, hi + margin))


def render_plot(
    coin: str,
    closes: Sequence[tuple[dt.date, float]],
    predictions: Sequence[PredictionRecord],
    trades: Sequence[dict[str, Any]],
) -> bytes:
    """PNG of closes (solid), forecast paths (dashed, from ``(as_of, last_close)``) with their 80 %
    and 95 % prediction intervals (shaded bands, when stored), and trades."""
    # The object-oriented API with the Agg canvas: no pyplot, no global backend state, thread-safe.
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if closes:
        ax.plot([d for d, _ in closes], [c for _, c in closes], color="#1f2937", lw=1.6, label="close")
    colours: dict[str, str] = {}
    banded: dict[str, set[str]] = {}
    for p in predictions:
        first = p.model not in colours
        colour = colours.setdefault(p.model, PALETTE[len(colours) % len(PALETTE)])
        days = [p.as_of + dt.timedelta(days=i) for i in range(len(p.values) + 1)]
        ax.plot(days, [p.last_close, *(finite(v) for v in p.values)], ls="--", lw=1.2, alpha=0.85,
                color=colour, label=f"forecast: {p.model}" if first else "_nolegend_")  # fmt: skip
        for level, alpha in BAND_LEVELS:
            bounds = p.bounds(level)
            if bounds is None:
                continue
            seen = banded.setdefault(p.model, set())
            label = "_nolegend_" if level in seen else f"{level}% interval: {p.model}"
            seen.add(level)
            lower, upper = bounds
            ax.fill_between(days, [p.last_close, *(finite(v) for v in lower)],
                            [p.last_close, *(finite(v) for v in upper)],
                            color=colour, alpha=alpha, lw=0, label=label)  # fmt: skip
        ax.plot([p.as_of], [p.last_close], "o", ms=3, color=colour, label="_nolegend_")
    for side, marker, colour in (("buy", "^", "#16a34a"), ("sell", "v", "#dc2626")):
        points = [(t["as_of"], t["price"]) for t in trades if t["side"] == side]
        if points:
            ax.scatter([d for d, _ in points], [y for _, y in points], marker=marker, s=80, color=colour,
                       edgecolor="white", linewidth=0.8, zorder=5, label=side)  # fmt: skip
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(f"{coin}: recent closes and forecast paths", parse_math=False)
    ax.set_ylabel("close")
    ax.grid(alpha=0.3)
    _clip_bands(ax, closes, predictions)
    if not closes and not predictions and not trades:
        ax.text(0.5, 0.5, "nothing stored in this window", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="upper left", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
