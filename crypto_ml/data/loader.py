"""``CryptoLoader``: daily OHLC, volume and market cap per coin, the talk's interface and more.

>>> from crypto_ml.data.loader import CryptoLoader
>>> loader = CryptoLoader()                      # the bundled real dataset
>>> loader.get_crypto_names()[:3]
['aidos-kuneen', 'ark', 'atc-coin']
>>> df = loader.get_df("bitcoin")                # Date, Open, High, Low, Close, Volume, Market Cap
>>> prices, times = loader.get_prices("BTC")     # names and symbols, any case
>>> CryptoLoader(as_of="2017-01-01").get_df("bitcoin").Date.max()   # a point-in-time view
Timestamp('2017-01-01 00:00:00')
"""

from __future__ import annotations

import datetime as dt
import difflib
from os import PathLike

import numpy as np
import pandas as pd

from crypto_ml.data.validation import (
    LONG_COLUMNS,
    DataValidationError,
    ValidationReport,
    parse_and_validate,
)
from crypto_ml.sources.base import Source, as_date, resolve_source

#: Columns of :meth:`CryptoLoader.get_df`, as in the talk's CSV files.
DF_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Volume", "Market Cap"]
_TO_DF = dict(zip(["date", "open", "high", "low", "close", "volume", "market_cap"], DF_COLUMNS))


class UnknownCoinError(KeyError):
    """No coin has that id, name or symbol. The message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class CryptoLoader:
    """Load, validate and serve daily price history per coin.

    :param source: where the data comes from: ``None`` for the bundled dataset, a path for
        :class:`~crypto_ml.sources.CSVSource`, or any :class:`~crypto_ml.sources.Source`.
    :param as_of: a point-in-time view: rows dated after this day are invisible, to every method.
    :param synthetic: add this many synthetic coins (labelled ``synthetic`` everywhere).
    :param seed: seed of the synthetic coins.
    :param strict: raise :class:`~crypto_ml.data.validation.DataValidationError` if any row is
        quarantined, instead of reporting it in :attr:`report` and going on.

    Every load is validated (see :mod:`crypto_ml.data.validation`); :attr:`report` lists what was
    quarantined or flagged, by coin, source row and rule.
    """

    def __init__(
        self,
        source: Source | str | PathLike | None = None,
        *,
        as_of: dt.date | str | None = None,
        synthetic: int = 0,
        seed: int = 0,
        strict: bool = False,
    ) -> None:
        from crypto_ml.sources.synthetic import SyntheticSource

        self.source = resolve_source(source)
        if synthetic:
            self.source = SyntheticSource(self.source, n=synthetic, seed=seed)
        self.as_of = as_date(as_of)
        raw = self.source.read(as_of=self.as_of)
        frame, report = parse_and_validate(raw)
        if self.source.report is not None:
            report.failed_coins.update(self.source.report.failed_coins)
        if self.as_of is not None:
            frame = frame[frame["date"] <= pd.Timestamp(self.as_of)].reset_index(drop=True)
        if strict and report.errors:
            shown = "\n  ".join(str(f) for f in report.errors[:20])
            raise DataValidationError(f"{len(report.errors)} invalid rows:\n  {shown}")
        self.report: ValidationReport = report
        self._frame = frame
        self._build_index(frame)

    # -- construction -------------------------------------------------------------------------
    def _build_index(self, frame: pd.DataFrame) -> None:
        coins = frame["coin"].to_numpy()
        if len(coins):
            starts = np.flatnonzero(np.r_[True, coins[1:] != coins[:-1]])
            stops = np.r_[starts[1:], len(coins)]
        else:
            starts = stops = np.array([], dtype=int)
        self._dfs: dict[str, pd.DataFrame] = {}
        self._dates: dict[str, np.ndarray] = {}
        block = frame[list(_TO_DF)].rename(columns=_TO_DF)
        for start, stop in zip(starts, stops):
            coin = coins[start]
            df = block.iloc[start:stop].reset_index(drop=True)
            self._dfs[coin] = df
            self._dates[coin] = df["Date"].to_numpy()
        first = frame.drop_duplicates("coin")[["coin", "name", "synthetic"]].set_index("coin")
        meta = self.source.coin_metadata()
        symbols = {}
        if meta is not None:
            symbols = dict(zip(meta["coin"], meta["symbol"]))
        first["symbol"] = [symbols.get(c, "") for c in first.index]
        self._meta = first
        lookup: dict[str, str] = {}
        for coin, row in first.iterrows():
            for key in (coin, row["name"], row["symbol"]):
                if key:
                    lookup.setdefault(str(key).lower(), coin)
        self._lookup = lookup

    # -- the talk's interface -----------------------------------------------------------------
    def get_crypto_names(self) -> list[str]:
        """Every coin id (lowercase slug, e.g. ``"bitcoin-cash"``), sorted."""
        return sorted(self._dfs)

    def get_df(self, name: str, *, as_of: dt.date | str | None = None) -> pd.DataFrame:
        """One coin's history: ``Date, Open, High, Low, Close, Volume, Market Cap``, oldest first.

        :param name: coin id, display name or symbol, any case (``"bitcoin"``, ``"BTC"``).
        :param as_of: leave out rows after this day (cannot reach past the loader's own ``as_of``).
        """
        coin = self.resolve(name)
        df = self._dfs[coin]
        stop = self._stop(coin, as_of)
        return df.iloc[:stop].copy() if stop is not None else df.copy()

    def get_prices(self, name: str, *, as_of: dt.date | str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(closes, dates)`` as numpy arrays (float64, datetime64[ns]), oldest first."""
        coin = self.resolve(name)
        stop = self._stop(coin, as_of)
        df = self._dfs[coin]
        prices = df["Close"].to_numpy(dtype="float64")
        times = self._dates[coin]
        if stop is not None:
            prices, times = prices[:stop], times[:stop]
        return prices.copy(), times.copy()

    # -- more ---------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The coin id for an id, name or symbol (case-insensitive); a clear error otherwise."""
        if not isinstance(name, str) or not name.strip():
            raise UnknownCoinError(f"coin must be a non-empty string, got {name!r}")
        key = name.strip().lower()
        coin = self._lookup.get(key)
        if coin is None:
            coin = self._lookup.get(key.replace(" ", "-"))
        if coin is None:
            close = difflib.get_close_matches(key, list(self._lookup), n=5, cutoff=0.6)
            hint = (
                f"; did you mean {', '.join(repr(self._lookup[c]) for c in dict.fromkeys(close))}?"
                if close
                else f"; known coins include {', '.join(self.get_crypto_names()[:5])}, ..."
            )
            failed = self.report.failed_coins.get(key)
            if failed:
                hint = f"; it failed to load: {failed}"
            raise UnknownCoinError(
                f"unknown coin {name!r} ({len(self._dfs)} coins loaded from {self.source.name}){hint}"
            )
        return coin

    def is_synthetic(self, name: str) -> bool:
        return bool(self._meta.at[self.resolve(name), "synthetic"])

    def coins(self) -> pd.DataFrame:
        """One row per coin: name, symbol, synthetic, rows, first and last date, last close."""
        rows = []
        for coin, df in self._dfs.items():
            meta = self._meta.loc[coin]
            rows.append(
                {
                    "coin": coin,
                    "name": meta["name"],
                    "symbol": meta["symbol"],
                    "synthetic": bool(meta["synthetic"]),
                    "rows": len(df),
                    "first": df["Date"].iat[0].date(),
                    "last": df["Date"].iat[-1].date(),
                    "last_close": float(df["Close"].iat[-1]),
                }
            )
        out = pd.DataFrame(rows).set_index("coin").sort_index()
        counts = self.report.counts_by_coin()
        out = out.join(counts, how="left").fillna({"errors": 0, "warnings": 0})
        return out.astype({"errors": int, "warnings": int})

    def frame(
        self, *, since: dt.date | str | None = None, as_of: dt.date | str | None = None
    ) -> pd.DataFrame:
        """The clean long frame (``coin, name, date, open, ..., synthetic``), optionally only the
        rows with ``since < date <= as_of``."""
        frame = self._frame
        mask = pd.Series(True, index=frame.index)
        if since is not None:
            mask &= frame["date"] > pd.Timestamp(as_date(since))
        limit = self._limit(as_of)
        if limit is not None:
            mask &= frame["date"] <= pd.Timestamp(limit)
        return frame.loc[mask, [*LONG_COLUMNS, "synthetic"]].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self._dfs)

    def __contains__(self, name: object) -> bool:
        try:
            self.resolve(name)  # type: ignore[arg-type]
        except UnknownCoinError:
            return False
        return True

    def __repr__(self) -> str:
        as_of = f", as_of={self.as_of}" if self.as_of else ""
        return f"CryptoLoader({self.source!r}, {len(self)} coins, {len(self._frame)} rows{as_of})"

    # -- helpers ------------------------------------------------------------------------------
    def _limit(self, as_of) -> dt.date | None:
        day = as_date(as_of)
        if day is not None and self.as_of is not None and day > self.as_of:
            raise ValueError(
                f"as_of {day} is after this loader's as_of {self.as_of}: a point-in-time loader "
                "cannot see later data"
            )
        return day

    def _stop(self, coin: str, as_of) -> int | None:
        day = self._limit(as_of)
        if day is None:
            return None
        return int(np.searchsorted(self._dates[coin], np.datetime64(day, "ns"), side="right"))
