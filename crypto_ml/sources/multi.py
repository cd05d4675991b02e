"""Several sources read as one (the markets of a :class:`~crypto_ml.markets.MultiMarket`).

Each part names its own coins (``binance.btc-usdt``, ``kraken.btc-usd``), so the parts' frames,
universes, history limits and notes are put side by side, never merged by coin. A part that
cannot be read at all fails its own coins (named, with the reason), and the others go on; every
part failing fails the read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import pandas as pd

from crypto_ml.data.validation import ValidationReport
from crypto_ml.sources.base import Source, SourceError

log = logging.getLogger(__name__)


class MultiSource(Source):
    """The parts' rows, one frame; the parts' facts, one of each.

    :param parts: the sources, each naming its coins apart from the others'.
    :param name: the label of the whole (each row is stored with its own part's :meth:`label_of`).
    """

    def __init__(self, parts: Sequence[Source], *, name: str) -> None:
        self.parts = list(parts)
        self.name = name
        self._report = ValidationReport()
        self._owner: dict[str, Source] = {}

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        self._report = ValidationReport()
        frames, errors = [], []
        for part in self.parts:
            try:
                frame = part.read(as_of=as_of)
            except SourceError as exc:
                errors.append(f"{part.name}: {exc}")
                self._report.failed_coins.update(self._coins_of_failed(part, exc))
                log.error("%s: %s (its coins fail, the other markets go on)", part.name, exc)
                continue
            if part.report is not None:
                self._report.failed_coins.update(part.report.failed_coins)
            for coin in {*getattr(part, "universe_ids", {}), *frame["coin"].unique()}:
                self._owner[coin] = part
            frames.append(frame)
        if self.parts and len(errors) == len(self.parts):
            raise SourceError("every market failed: " + "; ".join(errors))
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else self._empty()

    def _empty(self) -> pd.DataFrame:
        from crypto_ml.data.validation import LONG_COLUMNS, ORIGIN_COLUMNS

        return pd.DataFrame(columns=[*LONG_COLUMNS, *ORIGIN_COLUMNS])

    @staticmethod
    def _coins_of_failed(part: Source, exc: Exception) -> dict[str, str]:
        """The coins of a part that could not be read: those known before reading (an explicit
        list of symbols), else the part as a whole (``<prefix>.*``)."""
        market = getattr(part, "market", None)
        ids = market.parse_time_coin_ids() if market is not None else None
        reason = f"{part.name}: {exc}"
        if ids:
            return {coin: reason for coin in ids}
        return {f"{getattr(market, 'prefix', None) or part.name}.*": reason}

    def _merged(self, attr: str) -> dict:
        out: dict = {}
        for part in self.parts:
            out.update(getattr(part, attr, None) or {})
        return out

    @property
    def universe_ids(self) -> dict[str, str]:
        """``{coin id: symbol}`` of every part's universe of the day."""
        return self._merged("universe_ids")

    @property
    def limits(self) -> dict[str, str]:
        return self._merged("limits")

    @property
    def notes(self) -> dict[str, str]:
        return self._merged("notes")

    @property
    def seeded(self) -> dict:
        return self._merged("seeded")

    @property
    def calls(self) -> int:
        """Requests made by every part."""
        return sum(getattr(part, "calls", 0) for part in self.parts)

    def universe(self) -> dict[str, str]:
        """Every part's universe (what a Connection test resolves)."""
        out: dict[str, str] = {}
        for part in self.parts:
            out.update(part.universe())
            if part.report is not None:
                self._report.failed_coins.update(part.report.failed_coins)
        return out

    def label_of(self, coin: str) -> str:
        part = self._owner.get(coin)
        return part.label_of(coin) if part is not None else self.name

    def seed_label_of(self, coin: str) -> str | None:
        part = self._owner.get(coin)
        return part.seed_label_of(coin) if part is not None else None

    def coin_metadata(self) -> pd.DataFrame | None:
        frames = [m for m in (part.coin_metadata() for part in self.parts) if m is not None and len(m)]
        if not frames:
            return None
        out = pd.concat(frames, ignore_index=True)
        out["rank"] = range(1, len(out) + 1)
        return out

    @property
    def report(self) -> ValidationReport:
        return self._report
