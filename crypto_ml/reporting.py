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


def day_table(day: Any, *, coins: list[str] | None = None, model: str | None = None,
              horizon: int | None = None, url: str | None = None):
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
        if (coins is not None and p["coin"] not in coins) or (model is not None and p["model"] != model) \
                or (horizon is not None and p["horizon"] != int(horizon)):
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
            }
        )
    columns = ["coin", "model", "version", "horizon", "last_close", "forecast", "expected_return_pct",
               "interval80_pct", "interval95_pct", "decision"]
    return pd.DataFrame(rows, columns=columns).sort_values("coin").reset_index(drop=True)


def format_table(table) -> str:
    """``table`` as text for people: numbers to 6 significant digits with thousands separators
    (``2,539.32``, ``0.582191``), never ``5.821911e-01``."""
    if not len(table):
        return "(none)"
    return table.to_string(index=False, float_format=lambda v: f"{v:,.6g}" if abs(v) >= 1e-4 or v == 0
                           else f"{v:.3g}")


def day_summary(day: Any, *, coins: list[str] | None = None, model: str | None = None,
                horizon: int | None = None, url: str | None = None) -> dict[str, Any]:
    """Log :func:`day_table` (of one run's ``model`` and ``horizon``, when given) and return counts
    (JSON-able, for XCom)."""
    table = day_table(day, coins=coins, model=model, horizon=horizon, url=url)
    missing = sorted(set(coins or []) - set(table["coin"]))
    trades = table[table["decision"] != "stored"]
    what = f" ({model}, horizon {horizon})" if model is not None else ""
    log.info("pipeline results for %s%s:\n%s", day, what, format_table(table))
    if missing:
        log.warning("%d coins have no prediction for %s: %s", len(missing), day, ", ".join(missing))
    return {
        "day": str(day),
        "predicted": len(table),
        "trades": len(trades),
        "stored_only": len(table) - len(trades),
        "missing": missing,
    }


def largest_moves(table, top: int = 12) -> tuple[list[str], str]:
    """The ``top`` coins of :func:`day_table` by absolute expected return, and how they were
    chosen (the plot's caption). Ties keep the table's order; when every coin expects the same move
    (0 % under a naive model, say) the caption says so rather than claim the largest moves."""
    moves = table["expected_return_pct"].abs()
    coins = list(table.loc[moves.sort_values(ascending=False, kind="stable").index, "coin"].head(top))
    if moves.nunique() > 1:
        return coins, f"{top} largest expected moves"
    return coins, f"every expected move is {moves.iat[0]:.2f}%: the first {len(coins)} coins"


def plot_day(day: Any, path: str | Path, *, url: str | None = None, top: int = 12) -> Path:
    """A PNG of the day: expected return per coin (bars coloured by decision) and the forecast
    paths of the ``top`` coins by absolute expected return, each after its recent closes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from crypto_ml import storage

    table = day_table(day, url=url)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 10))
    if table.empty:
        ax1.text(0.5, 0.5, f"no predictions for {day}", ha="center", va="center")
    else:
        t = table.sort_values("expected_return_pct")
        colors = ["tab:green" if d.startswith("buy") else "tab:red" if d.startswith("sell") else "tab:gray"
                  for d in t["decision"]]
        ax1.bar(t["coin"], t["expected_return_pct"], color=colors)
        ax1.set_ylabel("expected return over the horizon (%)")
        ax1.set_title(f"Crypto-ML forecasts as of {day}: green = buy, red = sell, grey = stored only")
        ax1.tick_params(axis="x", labelrotation=90, labelsize=6)
        chosen, picked = largest_moves(table, top)
        preds = {p["coin"]: p for p in storage.get_predictions(as_of=day, url=url)}
        for coin in chosen:
            hist = storage.load_prices(coin, as_of=day, url=url).tail(60)
            if hist.empty:
                continue
            base = hist["Close"].iat[-1]
            p = preds[coin]
            days = pd.date_range(hist["Date"].iat[-1], periods=len(p["values"]) + 1, freq="D")
            line, = ax2.plot(hist["Date"], hist["Close"] / base, lw=1)
            ax2.plot(days, [1.0, *[v / base for v in p["values"]]], ls="--", color=line.get_color(), label=coin)
            band = (p.get("intervals") or {}).get("80")
            if band:  # the 80 % interval of the path
                ax2.fill_between(days, [1.0, *[v / base for v in band["lower"]]],
                                 [1.0, *[v / base for v in band["upper"]]], color=line.get_color(), alpha=0.12)
        ax2.set_ylabel("close / last close")
        ax2.set_title(f"last 60 days and forecast with its 80% interval ({picked})")
        ax2.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
