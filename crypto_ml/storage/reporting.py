"""Summaries of a day's pipeline results, from the project database (table and plot)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def interval_return_pct(prediction: dict[str, Any], level: str) -> str:
    """The ``level`` interval of the horizon return in percent, e.g. ``"-8.1..+9.3"``, or ``"-"``
    when the prediction has none."""
    bounds = (prediction.get("intervals") or {}).get(level)
    if not bounds or not prediction.get("last_close"):
        return "-"
    base = float(prediction["last_close"])
    lo, hi = bounds["lower"][-1] / base - 1.0, bounds["upper"][-1] / base - 1.0
    return f"{100 * lo:+.1f}..{100 * hi:+.1f}"


def day_table(
    day: Any,
    *,
    coins: list[str] | None = None,
    model: str | None = None,
    horizon: int | None = None,
    url: str | None = None,
):
    """One row per prediction for ``day`` (of ``model`` and ``horizon`` only, when given: a run's
    own): model, version, last close, forecast at the horizon, expected return, its 80 % and 95 %
    intervals (of the horizon return, percent; ``-`` when none was stored), and the decision
    (``buy``/``sell`` with status, or ``stored``)."""
    import pandas as pd

    from crypto_ml import storage

    preds = storage.get_predictions(as_of=day, url=url)
    trades = {
        (t["coin"], t["model"], t["version"], t["horizon"]): t
        for t in storage.get_trade_requests(as_of=day, url=url)
    }
    rows = []
    for p in preds:
        if (
            (coins is not None and p["coin"] not in coins)
            or (model is not None and p["model"] != model)
            or (horizon is not None and p["horizon"] != int(horizon))
        ):
            continue
        trade = trades.get((p["coin"], p["model"], p["version"], p["horizon"]))
        rows.append(
            {
                "coin": p["coin"],
                "model": p["model"],
                "version": p["version"],
                "horizon": p["horizon"],
                "last_close": p["last_close"],
                "forecast": p["values"][-1],
                "expected_return_pct": round(100 * p["expected_return"], 2),
                "interval80_pct": interval_return_pct(p, "80"),
                "interval95_pct": interval_return_pct(p, "95"),
                "decision": (
                    f"{trade['side']} {trade['quantity']:.6g} ({trade['status']})" if trade else "stored"
                ),
                "interval_reason": p.get("interval_reason"),
            }
        )
    columns = [
        "coin",
        "model",
        "version",
        "horizon",
        "last_close",
        "forecast",
        "expected_return_pct",
        "interval80_pct",
        "interval95_pct",
        "decision",
        "interval_reason",
    ]
    return pd.DataFrame(rows, columns=columns).sort_values("coin").reset_index(drop=True)


def format_table(table) -> str:
    """``table`` as text for people: numbers to 6 significant digits with thousands separators
    (``2,539.32``, ``0.582191``), never ``5.821911e-01``."""
    if not len(table):
        return "(none)"
    return table.to_string(
        index=False, float_format=lambda v: f"{v:,.6g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.3g}"
    )


def printed(table):
    """:func:`day_table` as printed: its columns but the interval reason (said under it, by
    :func:`interval_note`)."""
    return table.drop(columns="interval_reason")


def interval_note(table) -> str | None:
    """The coins of :func:`day_table` that carry no interval, a line each with its reason (as the
    engine gave it) under a heading line, or None when every coin has one."""
    rows = table[table["interval_reason"].notna()] if len(table) else table
    if not len(rows):
        return None
    lines = [f"{len(rows)} coin{' has' if len(rows) == 1 else 's have'} no interval (-):"]
    lines += [f"  {r.coin}: {r.interval_reason}" for r in rows.itertuples()]
    return "\n".join(lines)


def day_summary(
    day: Any,
    *,
    coins: list[str] | None = None,
    model: str | None = None,
    horizon: int | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Log :func:`day_table` (of one run's ``model`` and ``horizon``, when given) and return counts
    (JSON-able, for XCom)."""
    table = day_table(day, coins=coins, model=model, horizon=horizon, url=url)
    missing = sorted(set(coins or []) - set(table["coin"]))
    trades = table[table["decision"] != "stored"]
    what = f" ({model}, horizon {horizon})" if model is not None else ""
    log.info("pipeline results for %s%s:\n%s", day, what, format_table(printed(table)))
    note = interval_note(table)
    if note:
        log.info("%s", note)
    if missing:
        log.warning("%d coins have no prediction for %s: %s", len(missing), day, ", ".join(missing))
    return {
        "day": str(day),
        "predicted": len(table),
        "trades": len(trades),
        "stored_only": len(table) - len(trades),
        "missing": missing,
    }


#: Horizon-return band columns of :func:`day_bands` (percent), per interval level.
BAND_COLUMNS = {"80": ("lo80_pct", "hi80_pct"), "95": ("lo95_pct", "hi95_pct")}
#: Decision colours of the day's plot (the web view uses the same).
SIDE_COLOURS = {"buy": "#15803d", "sell": "#b91c1c", "stored": "#6b7280"}


def day_run(day: Any, *, url: str | None = None) -> tuple[str, int] | None:
    """``(model, horizon)`` of the newest prediction written for ``day`` (the run that finished
    last), or None when the day has none."""
    from crypto_ml import storage

    preds = storage.get_predictions(as_of=day, url=url)
    if not preds:
        return None
    newest = max(preds, key=lambda p: (p["created_at"] is not None, p["created_at"] or 0))
    return newest["model"], int(newest["horizon"])


def day_bands(day: Any, *, model: str | None = None, horizon: int | None = None, url: str | None = None):
    """:func:`day_table` of one run (``model`` and ``horizon``; default :func:`day_run`'s) with
    the numbers a plot needs: the 80 % and 95 % intervals of the horizon return in percent
    (``lo80_pct`` ... ``hi95_pct``, NaN when none is stored), ``width80_pct`` (``hi80 - lo80``),
    ``side`` (``buy``/``sell``/``stored``) and ``status`` (the broker's answer, ``""`` when stored)."""
    import numpy as np

    from crypto_ml import storage

    if model is None or horizon is None:
        run = day_run(day, url=url)
        if run is not None:
            model, horizon = model or run[0], horizon or run[1]
    table = day_table(day, model=model, horizon=horizon, url=url)
    preds = {
        (p["coin"], p["model"], p["version"], p["horizon"]): p
        for p in storage.get_predictions(as_of=day, url=url)
    }
    for _level, (lo, hi) in BAND_COLUMNS.items():
        table[lo], table[hi] = np.nan, np.nan
    for i, row in table.iterrows():
        p = preds[(row["coin"], row["model"], row["version"], row["horizon"])]
        base = float(p["last_close"] or 0.0)
        for level, (lo, hi) in BAND_COLUMNS.items():
            bounds = (p.get("intervals") or {}).get(level)
            if bounds and base:
                table.loc[i, lo] = 100 * (bounds["lower"][-1] / base - 1.0)
                table.loc[i, hi] = 100 * (bounds["upper"][-1] / base - 1.0)
    table["width80_pct"] = table["hi80_pct"] - table["lo80_pct"]
    decision = table["decision"].astype(str)
    table["side"] = decision.str.split(" ").str[0]
    table["status"] = decision.str.extract(r"\((.*)\)$", expand=False).fillna("")
    return table


def largest_moves(table, top: int = 12) -> tuple[list[str], str]:
    """The ``top`` coins of :func:`day_table` by absolute expected return, and how they were
    chosen (the plot's caption). Ties keep the table's order. When every coin expects the same
    move (0 % under a naive model, say) the caption says so rather than claim the largest moves,
    and, when the table has :func:`day_bands`' ``width80_pct``, the coins with the widest 80 %
    intervals are the ones that matter: they are chosen instead."""
    moves = table["expected_return_pct"].abs()
    if moves.nunique() > 1:
        order = moves.sort_values(ascending=False, kind="stable").index
        return list(table.loc[order, "coin"].head(top)), f"{top} largest expected moves"
    same = f"every expected move is {moves.iat[0]:.2f}%"
    if "width80_pct" in table and table["width80_pct"].notna().any():
        order = table["width80_pct"].sort_values(ascending=False, kind="stable", na_position="last").index
        coins = list(table.loc[order, "coin"].head(top))
        return coins, f"{same}: the {len(coins)} widest 80% intervals"
    coins = list(table["coin"].head(top))
    return coins, f"{same}: the first {len(coins)} coins"


def ranked_coins(bands, top: int = 20) -> tuple[list[str], str]:
    """The rows of the day's ranked chart: :func:`largest_moves` of ``bands`` (:func:`day_bands`)
    plus every coin with a trade decision, and its caption."""
    chosen, caption = largest_moves(bands, top)
    traded = [c for c in bands.loc[bands["side"] != "stored", "coin"] if c not in chosen]
    if traded:
        caption += f", and the {len(traded)} other traded"
    return chosen + traded, caption


def _return_axis(ax, axis: str, lo: float, hi: float) -> None:
    """A horizon-return axis in percent on a log-ratio scale (−50 % and +100 % equally far from 0),
    from ``lo`` to ``hi`` percent, with ticks at round returns far enough apart to be read."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    def fwd(x):
        return np.log1p(np.maximum(np.asarray(x, dtype=float), -99.0) / 100.0)

    def inv(y):
        return np.expm1(np.asarray(y, dtype=float)) * 100.0

    getattr(ax, f"set_{axis}scale")("function", functions=(fwd, inv))
    getattr(ax, f"set_{axis}lim")(lo, hi)
    gap = (fwd(hi) - fwd(lo)) / 9
    ticks = [0.0]
    for side in ((5, 10, 25, 50, 100, 200, 500, 1000), (-5, -10, -25, -50, -75, -90)):
        for t in side:
            if lo <= t <= hi and abs(fwd(t) - fwd(ticks[-1] if ticks[-1] * t > 0 else 0.0)) >= gap:
                ticks.append(float(t))
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(sorted(ticks)))
    target.set_minor_locator(NullLocator())
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+,.0f}%" if v else "0"))


def _return_limits(bands) -> tuple[float, float]:
    """Axis limits of the horizon returns of ``bands``: every expected move, and the 95 % bands of
    nine coins in ten, within −95 % .. +1,000 %; a band past them is drawn to the edge, its value
    written."""
    moves = bands["expected_return_pct"]
    lo95, hi95 = (bands[c].dropna() for c in BAND_COLUMNS["95"])
    lo = min(moves.min(), lo95.quantile(0.1) if len(lo95) else 0.0, 0.0)
    hi = max(moves.max(), hi95.quantile(0.9) if len(hi95) else 0.0, 0.0)
    return max(-95.0, lo * 1.1 - 1.0), min(1000.0, hi * 1.1 + 1.0)


def _ranked_panel(ax, bands, chosen: list[str], caption: str, lo: float, hi: float) -> None:
    """Horizontal chart, one row per chosen coin: 95 % interval (thin), 80 % (thick), the
    expected return (dot), coloured by decision, the decision written on the right."""
    rows = bands.set_index("coin").loc[chosen]
    key = "width80_pct" if caption.startswith("every") else "expected_return_pct"
    rows = rows.sort_values(key, ascending=True, na_position="first")
    for y, (_coin, r) in enumerate(rows.iterrows()):
        colour = SIDE_COLOURS.get(r["side"], SIDE_COLOURS["stored"])
        for level, lw, alpha in (("95", 2.0, 0.35), ("80", 7.0, 0.6)):
            a, b = (r[c] for c in BAND_COLUMNS[level])
            if a == a and b == b:
                ax.plot(
                    [max(a, lo), min(b, hi)], [y, y], color=colour, lw=lw, alpha=alpha, solid_capstyle="butt"
                )
                if b > hi and level == "95":
                    ax.text(
                        hi,
                        y,
                        f"{b:+,.0f}% ▸",
                        va="center",
                        ha="right",
                        fontsize=7,
                        color=colour,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85},
                    )
        ax.plot([r["expected_return_pct"]], [y], "o", ms=5, color=colour, mec="white", mew=0.8, zorder=3)
        text = r["decision"] if r["side"] != "stored" else "stored"
        ax.annotate(
            text,
            (1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7.5,
            color=colour,
        )
    ax.set_yticks(range(len(rows)), list(rows.index), fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    _return_axis(ax, "x", lo, hi)
    ax.axvline(0, color="#111827", lw=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("return over the horizon: dot = expected, thick = 80% interval, thin = 95%")
    ax.set_title(f"Ranked: {caption}", fontsize=10, loc="left")


def _all_coins_panel(ax, bands, lo: float, hi: float) -> None:
    """Every coin of the day as one thin column (sorted by expected return, then by band width):
    its 80 % interval, and its expected return; the extremes named."""
    import numpy as np

    t = bands.sort_values(["expected_return_pct", "width80_pct"], kind="stable").reset_index(drop=True)
    colours = [SIDE_COLOURS.get(s, SIDE_COLOURS["stored"]) for s in t["side"]]
    x = np.arange(len(t))
    lo80, hi80 = t["lo80_pct"].clip(lo, hi), t["hi80_pct"].clip(lo, hi)
    ax.vlines(x, lo80, hi80, colors=colours, lw=3, alpha=0.45)
    ax.scatter(x, t["expected_return_pct"].clip(lo, hi), s=10, c=colours, zorder=3)
    _return_axis(ax, "y", lo, hi)
    ax.axhline(0, color="#111827", lw=0.8)
    ax.set_xticks([])
    ax.set_xlim(-1, len(t))
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"All {len(t)} coins, by expected return then 80% interval width", fontsize=10, loc="left")


def _summary_text(bands, model: str, horizon: int) -> str:
    sides = bands["side"].value_counts()
    statuses = bands.loc[bands["side"] != "stored", "status"].value_counts()
    answered = ", ".join(f"{n} {s}" for s, n in statuses.items()) or "none"
    move = bands["expected_return_pct"]
    lines = [
        f"{len(bands)} coins, model {model}, horizon {horizon} days",
        f"decisions: {sides.get('buy', 0)} buy, {sides.get('sell', 0)} sell, {sides.get('stored', 0)} stored "
        f"(orders: {answered})",
        f"expected return: median {move.median():+.2f}%, range {move.min():+.2f}% .. {move.max():+.2f}%",
    ]
    if bands["width80_pct"].notna().any():
        lines.append(
            f"80% interval: median {bands['lo80_pct'].median():+.1f}% .. "
            f"{bands['hi80_pct'].median():+.1f}% (width {bands['width80_pct'].median():.1f} points)"
        )
        widest = bands.nlargest(3, "hi95_pct")
        named = ", ".join(f"{c} {v:+,.0f}%" for c, v in zip(widest["coin"], widest["hi95_pct"]))
        lines.append(f"highest 95% bounds: {named}")
        missing = int(bands["width80_pct"].isna().sum())
        if missing:
            lines.append(f"coins without stored intervals: {missing}")
    return "\n".join(lines)


def _coin_panel(ax, coin: str, row, prediction: dict[str, Any], hist) -> None:
    """One coin's last 60 closes and its forecast path with the 80 % and 95 % bands, relative to
    the last close on a log scale; titled with the coin and its decision."""
    import matplotlib.dates as mdates
    import pandas as pd
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    colour = SIDE_COLOURS.get(row["side"], SIDE_COLOURS["stored"])
    base = float(prediction["last_close"])
    days = pd.date_range(pd.Timestamp(prediction["as_of"]), periods=len(prediction["values"]) + 1, freq="D")
    if not hist.empty:
        ax.plot(hist["Date"], hist["Close"] / base, color="#1f2937", lw=1)
    for level, alpha in (("95", 0.12), ("80", 0.25)):
        band = (prediction.get("intervals") or {}).get(level)
        if band:
            ax.fill_between(
                days,
                [1.0, *[v / base for v in band["lower"]]],
                [1.0, *[v / base for v in band["upper"]]],
                color=colour,
                alpha=alpha,
                lw=0,
            )
    ax.plot(days, [1.0, *[v / base for v in prediction["values"]]], ls="--", color=colour, lw=1.4)
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if high / low < 100 else (1.0,)))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"×{v:g}"))
    ax.axhline(1.0, color="#9ca3af", lw=0.6)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    what = row["decision"] if row["side"] != "stored" else "stored"
    ax.set_title(
        f"{coin}: {row['expected_return_pct']:+.2f}%, {what}", fontsize=8.5, color=colour, loc="left"
    )


def plot_day(
    day: Any,
    path: str | Path,
    *,
    url: str | None = None,
    top: int = 12,
    model: str | None = None,
    horizon: int | None = None,
) -> Path:
    """A PNG of the day's run (``model`` and ``horizon``, default the newest written that day:
    :func:`day_run`), readable with a hundred coins:

    - ranked: the 20 coins that matter (the largest expected moves, or, when every move is the
      same as under the naive model, the widest 80 % intervals; plus every traded coin), each with
      its expected return, 80 % and 95 % intervals and decision (green buy, red sell, grey stored);
    - every coin of the day as one column (its 80 % interval and expected return), and the
      day in numbers (decisions, orders, the median move and interval);
    - small multiples: ``top`` (at most 8) ranked coins, up to half of them traded ones, each
      with its last 60 days and forecast path with its intervals, one panel each.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crypto_ml import storage

    bands = day_bands(day, model=model, horizon=horizon, url=url)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if bands.empty:
        fig, ax = plt.subplots(figsize=(12, 4))
        ax.text(0.5, 0.5, f"no predictions for {day}", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
    model, horizon = str(bands["model"].iat[0]), int(bands["horizon"].iat[0])
    chosen, caption = ranked_coins(bands, 20)
    lo, hi = _return_limits(bands)
    # Small multiples: up to half of them traded coins (the decisions), the rest the ranked ones.
    n = min(top, 8)
    traded = [c for c in chosen if bands.loc[bands["coin"] == c, "side"].iat[0] != "stored"][: n // 2]
    multiples = (traded + [c for c in chosen if c not in traded])[:n]
    fig = plt.figure(figsize=(15, 13), layout="constrained")
    head, tail = fig.subfigures(2, 1, height_ratios=[1.25, 1.0] if multiples else [1.0, 0.01])
    left, right = head.subfigures(1, 2, width_ratios=[1.1, 1.0])
    _ranked_panel(left.add_subplot(), bands, chosen, caption, lo, hi)
    all_ax, text_ax = right.subplots(2, 1, height_ratios=[2.2, 1.0])
    _all_coins_panel(all_ax, bands, lo, hi)
    text_ax.set_axis_off()
    text_ax.text(
        0.0,
        1.0,
        _summary_text(bands, model, horizon),
        va="top",
        fontsize=8.5,
        family="monospace",
        transform=text_ax.transAxes,
    )
    head.suptitle(
        f"Crypto-ML forecasts as of {day}: {model}, horizon {horizon} days, {len(bands)} coins "
        "(green = buy, red = sell, grey = stored only)",
        fontsize=12,
    )
    if multiples:
        preds = {
            p["coin"]: p
            for p in storage.get_predictions(as_of=day, url=url)
            if p["model"] == model and p["horizon"] == horizon
        }
        rows = bands.set_index("coin")
        axes = tail.subplots(2, 4).ravel()
        for ax, coin in zip(axes, multiples):
            hist = storage.load_prices(coin, as_of=day, url=url).tail(60)
            _coin_panel(ax, coin, rows.loc[coin], preds[coin], hist)
        for ax in axes[len(multiples) :]:
            ax.set_axis_off()
        which = (
            f"{len(traded)} traded and {len(multiples) - len(traded)} more"
            if traded
            else f"the first {len(multiples)}"
        )
        tail.suptitle(
            f"Ranked coins ({which}): last 60 days and the forecast path "
            "(close / last close, log scale; shaded: 80% and 95% intervals)",
            fontsize=10,
        )
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
