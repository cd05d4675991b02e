"""The HTML pages, rendered from the Jinja templates in ``templates/`` (package data).

Everything a template prints is HTML-escaped (``finalize`` escapes every value that is not
already markup), so no stored string (a coin id, a model name, a broker status) can inject HTML.
"""

from __future__ import annotations

import datetime as dt
import html
from functools import cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from crypto_ml.web.plot import finite

TITLE = "Crypto-ML: predictions and trades"


def _escape(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def num(x: Any) -> str:
    """A price or quantity: thousands separators from 1 up, 4 significant digits below, "—" when missing."""
    x = finite(x)
    if x is None:
        return "—"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.4g}"


def pct(x: Any) -> str:
    """A return as a signed percent, e.g. ``+2.00%``."""
    x = finite(x)
    return "—" if x is None else f"{x * 100:+.2f}%"


def points(x: Any) -> str:
    """A value already in percent, signed: ``+9.06%`` (``+1,801%`` from 1,000 up), "—" when missing."""
    x = finite(x)
    if x is None:
        return "—"
    return f"{x:+,.0f}%" if abs(x) >= 1000 else f"{x:+.2f}%"


def money(x: Any, sign: bool = False) -> str:
    """An amount in USD to the cent, e.g. ``20,000.00`` (``+125.30`` with ``sign``), "—" when missing."""
    x = finite(x)
    if x is None:
        return "—"
    return f"{x:+,.2f}" if sign else f"{x:,.2f}"


def counted(counts: dict[Any, int]) -> str:
    """``{"buy": 3, "sell": 1}`` as ``buy 3, sell 1`` (``none`` when empty)."""
    return ", ".join(f"{k if k is not None else 'undecided'} {n}" for k, n in counts.items()) or "none"


def when(x: Any) -> str:
    """A timestamp to the minute."""
    if isinstance(x, dt.datetime):
        return x.strftime("%Y-%m-%d %H:%M")
    return "" if x is None else str(x)


def signed(x: Any) -> str:
    """The CSS class of a signed number: ``up``, ``down`` or none."""
    x = finite(x)
    return "" if x is None or x == 0 else ("up" if x > 0 else "down")


def query(params: dict[str, Any]) -> str:
    """A query string of the non-empty ``params``."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


def band(row: dict[str, Any], level: str) -> str:
    """A horizon-return interval of a :func:`crypto_ml.storage.reporting.day_bands` row, e.g.
    ``-8.1% .. +9.3%`` (``+1,801%`` from 1,000 up)."""
    lo, hi = finite(row.get(f"lo{level}_pct")), finite(row.get(f"hi{level}_pct"))
    if lo is None or hi is None:
        return "—"
    return " .. ".join(f"{x:+,.0f}%" if abs(x) >= 1000 else f"{x:+.1f}%" for x in (lo, hi))


def interval(row: dict[str, Any], level: str) -> str:
    """The stored interval of the forecast close at the horizon, e.g. ``3,210 – 4,120``."""
    band = (row.get("intervals") or {}).get(level)
    if not band or not band.get("lower"):
        return "—"
    return f"{num(band['lower'][-1])} – {num(band['upper'][-1])}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("crypto_ml.web", "templates"),
        autoescape=True,
        finalize=_escape,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=num,
        pct=pct,
        when=when,
        signed=signed,
        query=query,
        interval=interval,
        points=points,
        money=money,
        counted=counted,
        band=band,
    )
    return env


def render(template: str, *, base: str, **context: Any) -> str:
    """The page ``template`` with ``context``; ``base`` is the ``<base href>`` of relative links."""
    return environment().get_template(template).render(base=base, title=TITLE, **context)
