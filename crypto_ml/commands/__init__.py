"""Sub-commands of the ``crypto-ml`` console script, one module per topic.

Each module defines ``register(subparsers)`` which adds its sub-commands; the handler of each
sub-command is stored with ``parser.set_defaults(func=...)`` and returns an exit code.
"""

from __future__ import annotations

import argparse


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = _whole(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is not positive (give 1 or more)")
    return number


def non_negative_int(value: str) -> int:
    """An argparse type: a whole number of at least 0."""
    number = _whole(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is negative (give 0 or more)")
    return number


def _whole(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def iso_date(value: str) -> str:
    """An argparse type: a day as ``YYYY-MM-DD``."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD, e.g. 2017-06-30)") from None
