"""The one date helper: every "day" the project takes (as-of days, training windows, anchors) goes
through :func:`as_date`.

Light on purpose (standard library only): DAG files and the CLI import it at parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, overload


@overload
def as_date(value: None, *, what: str = ...) -> None: ...
@overload
def as_date(value: Any, *, what: str = ...) -> dt.date | None: ...


def as_date(value: Any, *, what: str = "date") -> dt.date | None:
    """A plain :class:`datetime.date` from a date, a datetime (pendulum and pandas timestamps
    included: only the day counts), an ISO string (``YYYY-MM-DD``, anything after the tenth
    character is ignored) or a ``numpy.datetime64``; ``None`` (and ``""``) give ``None``.

    :param what: what the value is, named in the error (e.g. ``"as_of"``).
    :raises ValueError: for a string that is not an ISO date.
    :raises TypeError: for any other type.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"{what} {value!r} is not an ISO date (YYYY-MM-DD)") from None
    if type(value).__name__ == "datetime64":  # numpy, without importing numpy
        if str(value) == "NaT":
            raise ValueError(f"{what} is NaT, not a date")
        return dt.date.fromisoformat(str(value)[:10])
    if callable(getattr(value, "date", None)):
        return value.date()
    raise TypeError(
        f"{what} must be a date, datetime or ISO date string, not {type(value).__name__} ({value!r})"
    )


def iso_day(value: Any, *, what: str = "date") -> str:
    """``YYYY-MM-DD`` of :func:`as_date` (``ValueError`` for ``None``)."""
    day = as_date(value, what=what)
    if day is None:
        raise ValueError(f"{what} is missing (expected a date)")
    return day.isoformat()
