"""Input checks shared by the forecaster contract and its intervals: closes, horizon, levels."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd


def check_levels(levels: Any) -> tuple[float, ...]:
    """Interval levels in percent, each strictly between 0 and 100, or a ``ValueError``."""
    if isinstance(levels, (int, float)) and not isinstance(levels, bool):
        levels = (levels,)
    try:
        out = tuple(float(v) for v in levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be numbers in percent between 0 and 100, got {levels!r}") from None
    for v in out:
        if not (0.0 < v < 100.0) or not np.isfinite(v):
            raise ValueError(f"interval level must be a percentage strictly between 0 and 100, got {v!r}")
    if not out:
        raise ValueError("levels must name at least one interval level, e.g. (80, 95)")
    return out


def as_closes(history: Any) -> np.ndarray:
    """A 1-D float64 array of closes from an array-like, a Series or a ``get_df`` frame."""
    if isinstance(history, pd.DataFrame):
        if "Close" not in history.columns:
            raise ValueError(
                f"a DataFrame history needs a 'Close' column, got columns {list(history.columns)}"
            )
        history = history["Close"]
    if isinstance(history, pd.Series):
        history = history.to_numpy()
    try:
        y = np.asarray(history, dtype="float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"history must be numeric closes: {exc}") from None
    if y.ndim == 2 and 1 in y.shape:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"history must be 1-D (one close per day), got shape {y.shape}")
    return y


def check_horizon(horizon: Any) -> int:
    """``horizon`` as a positive int, or a ``ValueError`` saying what is wrong."""
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral):
        raise ValueError(f"horizon must be a positive int (days), got {horizon!r}")
    if horizon <= 0:
        raise ValueError(f"horizon must be a positive int (days), got {horizon}")
    return int(horizon)
