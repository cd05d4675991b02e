"""Several exchanges in one deployment: each its own Connection, one fan-out across them.

The pipeline's Connection names the others, in the order they are read::

    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://multi?markets=market_binance,market_kraken'
    AIRFLOW_CONN_MARKET_BINANCE='crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT'
    AIRFLOW_CONN_MARKET_KRAKEN='crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&seed=/data/kraken'

Each member is an exchange market (seeded or not) read from its own Connection; a coin's id names
its market (``binance.btc-usdt``, ``kraken.btc-usd``), so two exchanges listing the same pair
are two coins, and a coin run's id says where its prices come from
(``kraken.btc-usd__2026-12-01``). One poll stores every member's candles, one fan-out runs every
coin; a member that fails fails its own coins only.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from crypto_ml.markets.base import Market, Resolver, conn_field
from crypto_ml.markets.ids import EXCHANGE, MarketConfigError, last_closed_day
from crypto_ml.utils.dates import as_date

_CONN_ID = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class MultiMarket(Market):
    """``crypto-ml-market://multi?markets=<conn id>,<conn id>``: one member per Connection.

    :param market_conns: the members' Connection ids, as the setting names them.
    :param members: the members' markets, each with its ``prefix`` (its exchange id) set; empty
        until :meth:`resolved`.
    """

    market_conns: tuple[str, ...] = ()
    members: tuple[Market, ...] = ()

    name = "multi"
    keys = frozenset({"markets"})
    conn_fields = {
        "markets": conn_field(
            "Markets (Connection ids)",
            "string",
            "multi: the Connections of the exchange markets read "
            "together, e.g. market_binance,market_kraken; coin ids then name their market "
            "(binance.btc-usdt).",
        )
    }

    @classmethod
    def from_extra(cls, host: str, extra: dict, *, origin: str) -> dict[str, Any]:
        raw = extra.get("markets") or ""
        conns = tuple(c for c in re.split(r"[,\s]+", raw) if c) if isinstance(raw, str) else tuple(raw)
        if not conns:
            raise MarketConfigError(
                f"{origin}: a multi market needs extra.markets, the Connection ids "
                "of its exchange markets (e.g. market_binance,market_kraken)"
            )
        bad = [c for c in conns if not isinstance(c, str) or not _CONN_ID.fullmatch(c)]
        if bad:
            raise MarketConfigError(f"{origin}: extra.markets: {bad} are not Connection ids")
        if len(set(conns)) != len(conns):
            raise MarketConfigError(
                f"{origin}: extra.markets names {sorted({c for c in conns if conns.count(c) > 1})} "
                "more than once"
            )
        return {"kind": EXCHANGE, "market_conns": conns}

    def resolved(self, resolve: Resolver) -> MultiMarket:
        """Read every member's Connection; each must be an exchange market, one per exchange."""
        members: list[Market] = []
        conn_of: dict[str, str] = {}  # exchange id -> the Connection naming it
        for conn_id in self.market_conns:
            member = resolve(conn_id)
            if isinstance(member, MultiMarket) or not member.is_exchange:
                raise MarketConfigError(
                    f"{self.origin}: member {conn_id!r} is {member.describe()}; the markets of a multi "
                    "market are exchanges (a CSV folder's older history goes in an exchange's "
                    "extra.seed)"
                )
            if member.exchange in conn_of:
                raise MarketConfigError(
                    f"{self.origin}: markets {conn_of[member.exchange]!r} and {conn_id!r} "
                    f"are both {member.exchange}; "
                    f"coin ids name the exchange ({member.exchange}.btc-usdt), so list all of its "
                    "symbols in one Connection"
                )
            conn_of[member.exchange] = conn_id
            members.append(
                member.with_(prefix=member.exchange, origin=f"{member.origin}, a market of {self.origin}")
            )
        return self.with_(members=tuple(members))

    def market_of(self, coin: str) -> Market:
        """The member whose coin ``coin`` is (by its prefix); fails naming the valid prefixes."""
        for member in self.members:
            if member.owns(coin):
                return member
        raise MarketConfigError(
            f"{coin!r} names none of the markets of {self.origin}: coin ids there start with the "
            f"exchange ({', '.join(f'{m.prefix}.btc-usdt' for m in self.members)})"
        )

    @property
    def is_exchange(self) -> bool:
        return True

    @property
    def source_name(self) -> str:
        return "multi:" + "+".join(m.exchange for m in self.members)

    def describe(self) -> str:
        return f"{len(self.members)} markets: " + "; ".join(m.describe() for m in self.members)

    def market_day(self, day, *, now: dt.datetime | None = None) -> dt.date:
        """As for every exchange: ``day``, or the last day whose candle has closed at ``now``."""
        return min(as_date(day), last_closed_day(now or dt.datetime.now(dt.UTC)))

    def parse_time_coin_ids(self) -> list[str] | None:
        ids = [m.parse_time_coin_ids() for m in self.members]
        return None if any(i is None for i in ids) else sorted(c for i in ids for c in i)

    def source(self, day, *, stored=None, coins=None, now=None):
        """Every member's source (only those owning a coin of ``coins``, when it is given), read as one."""
        from crypto_ml.sources.multi import MultiSource

        if coins is not None:
            for coin in coins:
                self.market_of(coin)
        parts = []
        for member in self.members:
            own = None if coins is None else [c for c in coins if member.owns(c)]
            if own == []:
                continue
            held = {c: r for c, r in (stored or {}).items() if member.owns(c)}
            parts.append(member.source(day, stored=held, coins=own, now=now))
        return MultiSource(parts, name=self.source_name)
