"""Feature transforms of one coin's daily bars, and the checks a pipeline runs before predicting."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Windows (days) of the rolling features.
WINDOWS = (7, 30)


def make_features(df: pd.DataFrame) -> pd.DataFrame:
    """Daily features from a ``get_df``-style frame (``Date, Open, High, Low, Close, ...``).

    Columns: ``log_return`` (close to close), ``range_pct`` ((high - low) / close),
    ``return_<w>d`` (w-day log return), ``volatility_<w>d`` (std of daily log returns over w days),
    ``sma_ratio_<w>d`` (close / w-day simple moving average - 1). Rows keep the input's index; the
    first rows of each rolling feature are NaN until its window is full.
    """
    close = df["Close"].astype("float64")
    out = pd.DataFrame(index=df.index)
    out["Date"] = df["Date"]
    out["log_return"] = np.log(close).diff()
    out["range_pct"] = (df["High"] - df["Low"]) / close
    for w in WINDOWS:
        out[f"return_{w}d"] = np.log(close).diff(w)
        out[f"volatility_{w}d"] = out["log_return"].rolling(w).std()
        out[f"sma_ratio_{w}d"] = close / close.rolling(w).mean() - 1.0
    return out


def latest_features(df: pd.DataFrame) -> dict[str, float | None]:
    """The last row of :func:`make_features` as plain floats (None where not yet defined)."""
    if df.empty:
        return {}
    row = make_features(df).iloc[-1].drop(labels="Date")
    return {k: (None if pd.isna(v) else round(float(v), 6)) for k, v in row.items()}
