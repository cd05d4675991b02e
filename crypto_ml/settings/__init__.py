"""The one configuration home: typed getters for ``CRYPTO_ML_*`` settings, and their users.

- this module: the one environment parser (below);
- :mod:`~crypto_ml.settings.paths`: where the project keeps its files (homes, the checkout);
- :mod:`~crypto_ml.settings.engine`: the prediction engine's configuration object.

Every setting a user may set is listed in ``docs/settings.md`` (a test checks it).

Each getter reads one variable (from ``environ``, default ``os.environ``), treats an unset or blank
value as "use the default", and raises a ``ValueError`` that names the variable, what it must be
and what it got. Which module owns which variable is documented where it is read (one owner per
variable; ``tests/settings/test_env_settings.py`` checks it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_str(name: str, default: T = None, *, environ: Mapping[str, str] | None = None) -> str | T:
    """The stripped value of ``name``, else ``default``."""
    raw = _raw(name, environ)
    return default if raw is None else raw


def _number(name: str, raw: str, kind: type, minimum: float, label: str) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {label} >= {minimum:g}, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ValueError(f"{name} must be {label} >= {minimum:g}, got {raw!r}")
    return value


def env_int(name: str, default: T, *, minimum: int = 0, environ: Mapping[str, str] | None = None) -> int | T:
    """``name`` as an int ``>= minimum`` (``minimum=1``: a positive int), else ``default``."""
    raw = _raw(name, environ)
    return default if raw is None else int(_number(name, raw, int, minimum, "an int"))


def env_float(
    name: str, default: T, *, minimum: float = 0.0, environ: Mapping[str, str] | None = None
) -> float | T:
    """``name`` as a finite number ``>= minimum``, else ``default``."""
    raw = _raw(name, environ)
    return default if raw is None else float(_number(name, raw, float, minimum, "a number"))


def env_bool(name: str, default: T, *, environ: Mapping[str, str] | None = None) -> bool | T:
    """``name`` as a boolean (``1/true/yes/on`` or ``0/false/no/off``), else ``default``."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValueError(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {raw!r}")


def env_choice(
    name: str, default: T, choices: Iterable[str], *, environ: Mapping[str, str] | None = None
) -> str | T:
    """``name`` lower-cased, one of ``choices``, else ``default``."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    valid = tuple(choices)
    if raw.lower() not in valid:
        raise ValueError(f"{name} must be one of {', '.join(valid)}, got {raw!r}")
    return raw.lower()


def env_url(name: str, default: T = None, *, environ: Mapping[str, str] | None = None) -> str | T:
    """``name`` as a URL (``scheme://...``), else ``default``."""
    raw = _raw(name, environ)
    if raw is None:
        return default
    scheme, sep, _ = raw.partition("://")
    if not sep or not scheme:
        raise ValueError(f"{name} must be a URL (scheme://...), got {raw!r}")
    return raw
