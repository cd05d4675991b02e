"""The one prediction record: what the engine computes, the trading service decides on, storage
keeps and the web view draws.

:class:`PredictionRecord` crosses process boundaries (Celery result, Airflow XCom) only as JSON,
through :meth:`PredictionRecord.to_json` / :meth:`PredictionRecord.from_json`; never pickled.
The expected return is computed here and nowhere else (:func:`expected_return`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crypto_ml.utils.dates import as_date

#: The fields of :meth:`PredictionRecord.to_json` (``expected_return`` is derived, never read back).
JSON_FIELDS = (
    "coin",
    "as_of",
    "model",
    "version",
    "horizon",
    "values",
    "last_close",
    "expected_return",
    "intervals",
    "interval_method",
    "interval_reason",
)


def expected_return(values: Sequence[float], last_close: float) -> float:
    """The return from ``last_close`` to the last forecast close: ``values[-1] / last_close - 1``."""
    if not len(values):
        raise ValueError("expected_return: the forecast path is empty")
    last_close = float(last_close)
    if not last_close or not math.isfinite(last_close):
        raise ValueError(f"expected_return: last_close must be a finite non-zero price, got {last_close!r}")
    return float(values[-1]) / last_close - 1.0


def check_intervals(
    intervals: Any, steps: int, *, coin: str = "?", as_of: Any = None
) -> dict[str, Any] | None:
    """``intervals`` as ``{level: {"lower": [floats], "upper": [floats]}}`` with ``steps`` finite
    bounds each and lower <= upper, or a ``ValueError`` naming the coin, day, level and problem.
    Levels are normalised to their shortest percent text (``"80.0"`` → ``"80"``)."""
    if intervals is None:
        return None
    who = f"prediction of {coin!r} as of {as_of}"
    if not isinstance(intervals, dict):
        raise ValueError(f"{who}: intervals must be an object keyed by level, got {type(intervals).__name__}")
    out: dict[str, Any] = {}
    for level, bounds in intervals.items():
        try:
            pct = float(level)
        except (TypeError, ValueError):
            raise ValueError(f"{who}: interval level {level!r} is not a number (percent)") from None
        if not 0 < pct < 100:
            raise ValueError(f"{who}: interval level {level!r} must be between 0 and 100")
        if not isinstance(bounds, dict) or set(bounds) != {"lower", "upper"}:
            raise ValueError(f"{who}: interval {level!r} must have exactly 'lower' and 'upper' lists")
        lower, upper = bounds["lower"], bounds["upper"]
        if (
            not isinstance(lower, (list, tuple))
            or not isinstance(upper, (list, tuple))
            or not (len(lower) == len(upper) == steps)
        ):
            raise ValueError(f"{who}: interval {level!r} needs {steps} lower and {steps} upper bounds")
        lower = [float(v) for v in lower]
        upper = [float(v) for v in upper]
        for step, (lo, hi) in enumerate(zip(lower, upper), start=1):
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
                raise ValueError(
                    f"{who}: interval {level!r} step {step}: bounds {lo!r}..{hi!r} are not finite and ordered"
                )
        out[f"{pct:g}"] = {"lower": lower, "upper": upper}
    return out


@dataclass(frozen=True)
class PredictionRecord:
    """One forecast path of ``coin`` made on the closes up to ``as_of``: ``values[0]`` is the close
    forecast for ``as_of + 1`` day, ``values[-1]`` the one at the horizon.

    ``version`` is the stored model version that made it (0: fitted on the fly). ``intervals``
    holds the path's bounds per level, ``{"80": {"lower": [...], "upper": [...]}, ...}``, one bound
    per step (``None``: no intervals, and then ``interval_reason`` says why, e.g. too short a
    calibration sample; records made before reasons existed have none). Construction validates
    everything and normalises types, so a record that exists is a valid one.
    """

    coin: str
    as_of: dt.date
    model: str
    version: int
    horizon: int
    values: tuple[float, ...]
    last_close: float
    intervals: dict[str, dict[str, list[float]]] | None = None
    interval_method: str | None = None
    interval_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.coin or not isinstance(self.coin, str):
            raise ValueError(f"prediction coin must be a non-empty string, got {self.coin!r}")
        day = as_date(self.as_of, what=f"prediction of {self.coin!r}: as_of")
        if day is None:
            raise ValueError(f"prediction of {self.coin!r}: as_of is missing")
        object.__setattr__(self, "as_of", day)
        object.__setattr__(self, "version", int(self.version))
        object.__setattr__(self, "horizon", int(self.horizon))
        values = tuple(float(v) for v in self.values)
        if not values:
            raise ValueError(f"prediction of {self.coin!r} as of {day}: values is empty")
        object.__setattr__(self, "values", values)
        last_close = float(self.last_close)
        if not last_close or not math.isfinite(last_close):
            raise ValueError(
                f"prediction of {self.coin!r} as of {day}: last_close must be a finite non-zero price, "
                f"got {self.last_close!r}"
            )
        object.__setattr__(self, "last_close", last_close)
        intervals = check_intervals(self.intervals, len(values), coin=self.coin, as_of=day)
        object.__setattr__(self, "intervals", intervals)
        if intervals is not None and self.interval_method is None:
            object.__setattr__(self, "interval_method", "conformal")
        reason = self.interval_reason
        if reason is not None and (intervals is not None or not isinstance(reason, str)):
            state = "present" if intervals is not None else "absent"
            raise ValueError(
                f"prediction of {self.coin!r} as of {day}: interval_reason says why there are no "
                f"intervals; got {reason!r} with intervals {state}"
            )

    # -- derived --------------------------------------------------------------------------------
    @property
    def expected_return(self) -> float:
        """:func:`expected_return` of the path."""
        return expected_return(self.values, self.last_close)

    @property
    def key(self) -> tuple[str, dt.date, str, int, int]:
        """The natural key ``(coin, as_of, model, version, horizon)``."""
        return (self.coin, self.as_of, self.model, self.version, self.horizon)

    def bounds(self, level: str | float) -> tuple[list[float], list[float]] | None:
        """``(lower, upper)`` of the interval at ``level`` percent, or None when not stored."""
        band = (self.intervals or {}).get(f"{float(level):g}")
        return None if band is None else (band["lower"], band["upper"])

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``as_of`` as ``YYYY-MM-DD``, ``expected_return`` included)."""
        return {
            "coin": self.coin,
            "as_of": self.as_of.isoformat(),
            "model": self.model,
            "version": self.version,
            "horizon": self.horizon,
            "values": list(self.values),
            "last_close": self.last_close,
            "expected_return": self.expected_return,
            "intervals": self.intervals,
            "interval_method": self.interval_method,
            "interval_reason": self.interval_reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | PredictionRecord) -> PredictionRecord:
        """The record of a :meth:`to_json` dict (or a stored prediction row); other keys (the
        engine's ``hostname``, ``seconds``..., a given ``expected_return``) are ignored."""
        if isinstance(data, PredictionRecord):
            return data
        missing = [
            k
            for k in ("coin", "as_of", "model", "version", "horizon", "values", "last_close")
            if data.get(k) is None
        ]
        if missing:
            raise ValueError(f"a prediction needs {', '.join(missing)}; got keys {sorted(data)}")
        return cls(
            coin=data["coin"],
            as_of=data["as_of"],
            model=data["model"],
            version=data["version"],
            horizon=data["horizon"],
            values=data["values"],
            last_close=data["last_close"],
            intervals=data.get("intervals"),
            interval_method=data.get("interval_method"),
            interval_reason=data.get("interval_reason"),
        )
