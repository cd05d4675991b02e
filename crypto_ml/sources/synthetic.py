"""Synthetic coins for scale: block-bootstrapped from the real series, and labelled as such."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from crypto_ml.data.validation import parse_and_validate
from crypto_ml.sources.base import Source, resolve_source

SYNTHETIC_PREFIX = "synthetic-"


class SyntheticSource(Source):
    """The base source's coins plus ``n`` synthetic coins built from them.

    Each synthetic coin copies the calendar of a real *template* coin (one with at least
    ``min_rows`` days) and replays its days in a random block order (moving-block bootstrap of
    daily log returns, ``block`` days per block). Every day's open/high/low ratios to the close,
    its volume and its market cap per unit of price travel with its return, so each synthetic row
    keeps the real row's shape (high ≥ close ≥ low) and the series keeps the volatility
    clustering of the real one.

    Synthetic coins are named ``synthetic-00001``…, their display name says which real coin they
    were bootstrapped from, and their ``synthetic`` column is True in every frame and table.

    :param base: the real source (default: the bundled dataset).
    :param n: how many synthetic coins to add.
    :param seed: the random seed; the same seed gives the same coins.
    :param block: bootstrap block length in days.
    :param include_base: keep the base source's real coins as well.
    """

    def __init__(
        self,
        base: Source | None = None,
        *,
        n: int = 1000,
        seed: int = 0,
        block: int = 30,
        min_rows: int = 365,
        include_base: bool = True,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.base = resolve_source(base)
        self.n, self.seed, self.block, self.min_rows = n, seed, block, min_rows
        self.include_base = include_base
        self.name = f"{self.base.name}+synthetic{n}"

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        raw = self.base.read(as_of=as_of)
        clean, _ = parse_and_validate(raw)
        synth = generate_synthetic(clean, n=self.n, seed=self.seed, block=self.block, min_rows=self.min_rows)
        parts = [raw.assign(synthetic=False)] if self.include_base else []
        parts.append(synth)
        return pd.concat(parts, ignore_index=True)

    def coin_metadata(self) -> pd.DataFrame | None:
        return self.base.coin_metadata()

    @property
    def report(self):
        return self.base.report


def generate_synthetic(
    clean: pd.DataFrame, *, n: int, seed: int = 0, block: int = 30, min_rows: int = 365
) -> pd.DataFrame:
    """Build ``n`` synthetic coins from a clean long frame (see :class:`SyntheticSource`)."""
    columns = ["coin", "name", "date", "open", "high", "low", "close", "volume", "market_cap"]
    if n == 0:
        return pd.DataFrame(columns=[*columns, "origin", "line", "synthetic"])
    real = clean[~clean.get("synthetic", pd.Series(False, index=clean.index)).astype(bool)]
    sizes = real.groupby("coin").size()
    templates = sorted(sizes[sizes >= max(min_rows, 2)].index)
    if not templates:
        raise ValueError(f"no coin has the {min_rows} rows needed to bootstrap synthetic coins")
    by_coin = {c: g for c, g in real.groupby("coin", sort=False)}
    rng = np.random.default_rng(seed)
    width = len(str(n))
    frames = []
    for k in range(1, n + 1):
        template = templates[rng.integers(len(templates))]
        g = by_coin[template]
        close = g["close"].to_numpy()
        m = len(close) - 1  # number of daily returns
        days = np.arange(1, m + 1)  # row index of each return's day
        b = min(block, m)
        starts = rng.integers(0, m - b + 1, size=-(-m // b))
        pick = (starts[:, None] + np.arange(b)[None, :]).ravel()[:m]
        src = days[pick]
        logret = np.log(close[src] / close[src - 1])
        path = close[0] * np.exp(np.concatenate([[0.0], np.cumsum(logret)]))
        rows = np.concatenate([[0], src])
        ratio = {
            c: g[c].to_numpy()[rows] / close[rows] for c in ("open", "high", "low", "volume", "market_cap")
        }
        coin = f"{SYNTHETIC_PREFIX}{k:0{max(width, 5)}d}"
        frames.append(
            pd.DataFrame(
                {
                    "coin": coin,
                    "name": f"Synthetic {k} (bootstrap of {template})",
                    "date": g["date"].dt.strftime("%Y-%m-%d").to_numpy(),
                    "open": ratio["open"] * path,
                    "high": ratio["high"] * path,
                    "low": ratio["low"] * path,
                    "close": path,
                    "volume": ratio["volume"] * path,
                    "market_cap": ratio["market_cap"] * path,
                    "origin": f"synthetic(seed={seed}, template={template})",
                    "line": np.arange(len(path)),
                    "synthetic": True,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
