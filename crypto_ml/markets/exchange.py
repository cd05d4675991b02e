"""An exchange that ccxt supports (``binance``, ``kraken``, ``coinbase``, ...): daily candles of
an explicit list of symbols (``extra.symbols``) or of the top ``extra.top`` spot markets of
``extra.quote`` by 24 h quote volume, resolved every day."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from crypto_ml.markets.base import Market, conn_field, number
from crypto_ml.markets.ids import EXCHANGE, MarketConfigError, coin_id, last_closed_day, symbol_of
from crypto_ml.utils.dates import as_date


@dataclass(frozen=True)
class ExchangeMarket(Market):
    """``crypto-ml-market://<ccxt id>?symbols=BTC/USDT,ETH/USDT`` or ``?top=50&quote=USDT``."""

    name = EXCHANGE
    keys = frozenset(
        {
            "symbols",
            "top",
            "quote",
            "api_url",
            "start",
            "timeout",
            "retries",
            "backoff",
            "rate_limit_ms",
            "page_limit",
        }
    )
    conn_fields = {
        "symbols": conn_field(
            "Symbols", "string", "Exchange: the universe as symbols, e.g. BTC/USDT,ETH/USDT (or set Top N)."
        ),
        "top": conn_field(
            "Top N",
            "integer",
            "Exchange: the N spot markets of the quote currency "
            "with the largest 24 h quote volume, resolved every day.",
            minimum=1,
        ),
        "quote": conn_field(
            "Quote currency", "string", "Quote currency of the Top N universe.", default="USDT"
        ),
        "start": conn_field(
            "First day",
            "string",
            "Exchange: first day fetched for a coin the "
            "project DB does not hold yet (default: the whole history the exchange "
            "serves).",
            format="date",
        ),
        "api_url": conn_field(
            "API URL",
            "string",
            "Exchange: send every REST call to this base URL (a mirror, a proxy, a test server).",
        ),
        "timeout": conn_field("Timeout (s)", "number", "Seconds per request.", default=10),
        "retries": conn_field(
            "Retries",
            "integer",
            "Retries of a request on network errors and rate limits, with exponential backoff.",
            default=4,
            minimum=0,
        ),
        "backoff": conn_field(
            "Backoff (s)",
            "number",
            "Seconds before the first retry, doubled "
            "each retry (or the exchange's Retry-After, when longer).",
            default=1,
        ),
        "rate_limit_ms": conn_field(
            "Rate limit (ms)",
            "integer",
            "Least milliseconds between two requests (default: ccxt's published limit of the exchange).",
            minimum=0,
        ),
        "page_limit": conn_field(
            "Candles per request", "integer", "Daily candles asked per request.", default=1000, minimum=1
        ),
    }

    def coin_id(self, symbol: str) -> str:
        """The coin id of a symbol (what the exchange source names its coins by): ``btc-usdt``,
        or ``binance.btc-usdt`` for a member of several markets."""
        return f"{self.prefix}.{coin_id(symbol)}" if self.prefix else coin_id(symbol)

    def symbol_of(self, coin: str) -> str:
        """The symbol of one of this market's coin ids (the inverse of :meth:`coin_id`)."""
        if self.prefix:
            head, dot, rest = coin.partition(".")
            if head != self.prefix or not dot:
                raise MarketConfigError(
                    f"{coin!r} is not a coin id of {self.prefix} (they read '{self.prefix}.btc-usdt')"
                )
            coin = rest
        return symbol_of(coin)

    def owns(self, coin: str) -> bool:
        """Whether ``coin`` may be one of this market's coins (has its prefix, when it has one)."""
        return coin.startswith(f"{self.prefix}.") if self.prefix else True

    @classmethod
    def matches(cls, host: str, extra: dict) -> bool:
        return True  # any other host names a ccxt exchange (checked when it is first used)

    @classmethod
    def from_extra(cls, host: str, extra: dict, *, origin: str) -> dict[str, Any]:
        if not re.fullmatch(r"[a-z0-9_]+", host):
            raise MarketConfigError(
                f"{origin}: host {host!r} is not 'replay', 'csv' or a ccxt exchange id (binance, kraken, ...)"
            )
        raw_symbols = extra.get("symbols") or ()
        if isinstance(raw_symbols, str):
            raw_symbols = [s for s in re.split(r"[,\s]+", raw_symbols) if s]
        symbols = tuple(s.strip().upper() for s in raw_symbols)
        for s in symbols:
            try:
                coin_id(s)
            except MarketConfigError as exc:
                raise MarketConfigError(f"{origin}: extra.symbols: {exc}") from None
        if len(set(symbols)) != len(symbols):
            twice = sorted({s for s in symbols if symbols.count(s) > 1})
            raise MarketConfigError(f"{origin}: extra.symbols lists {twice} more than once")
        top = number(extra, "top", int, None, origin=origin, least=1)
        if bool(symbols) == bool(top):
            raise MarketConfigError(
                f"{origin}: an exchange market needs either extra.symbols (e.g. 'BTC/USDT,ETH/USDT') "
                "or extra.top (e.g. 50), not both and not neither"
            )
        try:
            start = as_date(extra.get("start"), what="start")
        except ValueError:
            raise MarketConfigError(
                f"{origin}: start={extra['start']!r} is not a date (YYYY-MM-DD)"
            ) from None
        return dict(
            kind=EXCHANGE,
            exchange=host,
            symbols=symbols,
            top=top,
            quote=str(extra.get("quote") or "USDT").upper(),
            api_url=extra.get("api_url") or None,
            start=start,
            timeout=number(extra, "timeout", float, 10.0, origin=origin),
            retries=number(extra, "retries", int, 4, origin=origin),
            backoff=number(extra, "backoff", float, 1.0, origin=origin),
            rate_limit_ms=number(extra, "rate_limit_ms", int, None, origin=origin),
            page_limit=number(extra, "page_limit", int, 1000, origin=origin, least=1),
        )

    @property
    def is_exchange(self) -> bool:
        return True

    @property
    def source_name(self) -> str:
        return f"ccxt:{self.exchange}"

    def describe(self) -> str:
        shown = ", ".join(self.symbols[:5]) + (
            f", ... ({len(self.symbols)} symbols)" if len(self.symbols) > 5 else ""
        )
        what = shown if self.symbols else f"top {self.top} {self.quote} markets by 24 h quote volume"
        return f"exchange {self.exchange} ({what}) via ccxt"

    def market_day(self, day, *, now: dt.datetime | None = None) -> dt.date:
        """``day`` itself, or the last day whose daily candle has closed when ``day``'s is still
        forming (a run never predicts from a candle after its own day)."""
        now = now or dt.datetime.now(dt.UTC)
        return min(as_date(day), last_closed_day(now))

    def parse_time_coin_ids(self) -> list[str] | None:
        return sorted(self.coin_id(s) for s in self.symbols) if self.symbols else None

    def source(self, day, *, stored=None, coins=None, now=None):
        from crypto_ml.sources.exchange import ExchangeSource

        return ExchangeSource(self, stored=stored, coins=coins, now=now)
