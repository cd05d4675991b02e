"""The day's summary at the top of the view: what the newest day's runs wrote (coins, predictions,
decisions, trade requests), the paper book (open positions, cash, P&L at the latest closes), the
coins that matter that day, and a leaderboard of the stored model evaluations.

Reads only (queries of :mod:`crypto_ml.storage.dashboard`, the day's table of
:mod:`crypto_ml.storage.reporting`, the paper broker's book of :mod:`crypto_ml.trading`).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from crypto_ml.storage import dashboard

#: Rows of the "coins that matter" table.
RANKED_ROWS = 10
#: The leaderboard's metrics: (key, heading, lower is better).
LEADERBOARD_METRICS = (
    ("mase", "MASE (median)", True),
    ("mape", "MAPE % (mean)", True),
    ("direction", "Direction hit rate (mean)", False),
)


@dataclass
class Book:
    """The paper book at the day's closes (:class:`crypto_ml.trading.risk.Account` in numbers)."""

    capital: float
    cash: float
    exposure: float
    equity: float
    positions: list[dict[str, Any]] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    @property
    def pnl(self) -> float:
        return self.equity - self.capital

    @property
    def pnl_pct(self) -> float:
        return self.pnl / self.capital


@dataclass
class Overview:
    """Everything the top of the page shows."""

    day: dt.date
    counts: dict[str, Any]
    run: str  # "naive, horizon 10 days": the run the ranked coins are of
    ranked: list[dict[str, Any]]  # rows of reporting.day_bands, in the chart's order
    ranked_caption: str
    book: Book | None
    book_problem: str | None  # why there is no book (no ledger yet, a coin without a mark)
    leaderboard: list[dict[str, Any]]
    evaluated_coins: int


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def leaderboard(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model over its evaluated coins (:func:`crypto_ml.storage.dashboard.model_evaluations`):
    ``model, coins, mase`` (median), ``mape`` and ``direction`` (means, None when no coin has
    it), ``evaluated_to`` (the newest training window end); best median MASE first."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for row in evaluations:
        by_model.setdefault(row["model"], []).append(row)
    board = []
    for model, rows in by_model.items():
        entry: dict[str, Any] = {
            "model": model,
            "coins": len(rows),
            "evaluated_to": max(r["train_end"] for r in rows),
        }
        for key, _, _ in LEADERBOARD_METRICS:
            values = [v for v in (_finite(r["metrics"].get(key)) for r in rows) if v is not None]
            average = statistics.median if key == "mase" else statistics.fmean
            entry[key] = average(values) if values else None
        board.append(entry)
    return sorted(board, key=lambda e: (e["mase"] is None, e["mase"] or 0.0, e["model"]))


def paper_book(day: dt.date, url: str | None = None) -> tuple[Book | None, str | None]:
    """The paper broker's book marked at the latest closes on or before ``day``, or None and why."""
    if not dashboard.has_paper_ledger(url):
        return None, "the paper ledger's tables are not in this database yet (nothing traded on paper)"
    from crypto_ml.trading.brokers import PaperBroker

    try:
        account = PaperBroker(url).account(marks={}, as_of=day)
    except ValueError as exc:  # a held coin with neither a close nor a fill to mark it at
        return None, str(exc)
    positions = []
    for row in dashboard.paper_positions(url):
        mark = account.marks.get(row["coin"])
        value = row["quantity"] * mark if mark is not None else None
        pnl = (mark - row["avg_price"]) * row["quantity"] if mark is not None else None
        positions.append({**row, "mark": mark, "value": value, "pnl": pnl})
    book = Book(account.capital, account.cash, account.exposure, account.equity, positions, account.notes)
    return book, None


def overview(url: str | None = None) -> Overview | None:
    """The summary of the newest day with predictions; None when nothing is stored."""
    from crypto_ml.storage.reporting import day_bands, ranked_coins

    day = dashboard.latest_day(url)
    if day is None:
        return None
    bands = day_bands(day, url=url)
    ranked, caption, run = [], "", ""
    if len(bands):
        chosen, caption = ranked_coins(bands, RANKED_ROWS)
        by_coin = bands.set_index("coin")
        ranked = [{"coin": c, **by_coin.loc[c].to_dict()} for c in chosen]
        run = f"{bands['model'].iat[0]}, horizon {int(bands['horizon'].iat[0])} days"
    book, problem = paper_book(day, url)
    evaluations = dashboard.model_evaluations(url)
    return Overview(
        day=day,
        counts=dashboard.day_counts(day, url),
        run=run,
        ranked=ranked,
        ranked_caption=caption,
        book=book,
        book_problem=problem,
        leaderboard=leaderboard(evaluations),
        evaluated_coins=len({r["coin"] for r in evaluations}),
    )
