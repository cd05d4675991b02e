"""Which class reads a setting: the kinds in the order they are tried (the first whose
``matches(host, extra)`` holds). A new kind of market is one module with a
:class:`~crypto_ml.markets.base.Market` subclass and one line here."""

from __future__ import annotations

from typing import Any

from crypto_ml.markets.csv import CSVMarket
from crypto_ml.markets.exchange import ExchangeMarket
from crypto_ml.markets.multi import MultiMarket
from crypto_ml.markets.replay import ReplayMarket
from crypto_ml.markets.seeded import SeededMarket

KINDS = (
    ReplayMarket,
    CSVMarket,
    MultiMarket,
    SeededMarket,
    ExchangeMarket,  # last: any other host is a ccxt exchange id
)


def pick(host: str, extra: dict):
    """The class of the market a Connection with this host and extra names."""
    return next(k for k in KINDS if k.matches(host, extra))


def class_for(kind: str, fields: dict[str, Any]):
    """The class of ``Market(kind=..., **fields)``."""
    if kind == ExchangeMarket.name:
        if fields.get("market_conns"):
            return MultiMarket
        return SeededMarket if fields.get("seed") else ExchangeMarket
    for k in KINDS:
        if k.name == kind:
            return k
    raise ValueError(f"no market kind {kind!r}; kinds: {[k.name for k in KINDS]}")
