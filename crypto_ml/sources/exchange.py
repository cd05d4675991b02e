"""Daily candles from any exchange ccxt supports (public market data: no API key needed).

ccxt does the exchange work: markets, tickers, ``fetch_ohlcv(symbol, "1d", since, limit)``, each
exchange's request signing and error mapping, and its own rate limiting (``enableRateLimit``, at
the exchange's published limit). This module adds what a daily pipeline needs on top:

- **the universe**, resolved when read: an explicit list of symbols, or the top N spot markets of
  a quote currency by 24 h quote volume (:meth:`ExchangeSource.universe`);
- **only what the project DB lacks**: per coin a window of days computed from what is stored
  (:func:`fetch_window`), fetched page by page (``since`` moves past the last candle of a page;
  candles repeated by overlapping pages are dropped);
- **only closed candles, never after the run's day**: a candle is kept when its day is on or
  before ``as_of`` and it closed before *now*; the candle still forming is never returned;
- **retries** with exponential backoff on ccxt's ``NetworkError`` family (``RequestTimeout``,
  ``RateLimitExceeded``, ``DDoSProtection``, ``ExchangeNotAvailable``), honouring a
  ``Retry-After`` header when the exchange sends one;
- **one coin fails alone**: ``BadSymbol``, a delisted or unknown market, a malformed answer or
  retries exhausted are recorded in :attr:`report` ``.failed_coins`` naming the coin, the symbol
  and the exchange; the other coins go on.

Exchange candles carry no market cap: that column stays empty (NULL in the project DB).
Volume is the base-asset volume ccxt returns (``fetch_ohlcv``'s sixth field).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from crypto_ml.data.validation import LONG_COLUMNS, ORIGIN_COLUMNS, ValidationReport
from crypto_ml.sources.base import Source, SourceError

if TYPE_CHECKING:
    import ccxt

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
#: The raw long frame every source hands over (what validation reads).
_RAW_COLUMNS = [*LONG_COLUMNS, *ORIGIN_COLUMNS]


class MalformedAnswer(RuntimeError):
    """The exchange answered 200 with a body that is not JSON."""


def make_exchange(market) -> ccxt.Exchange:
    """A ccxt exchange for public market data: spot markets only, no currency list (that call
    needs an API key on some exchanges), ccxt's own rate limiter on, every REST endpoint sent
    to ``market.api_url`` when one is set."""
    import ccxt

    klass = getattr(ccxt, market.exchange or "", None)
    if not isinstance(klass, type) or not issubclass(klass, ccxt.Exchange):
        near = [e for e in ccxt.exchanges if e.startswith((market.exchange or "?")[:3])][:5]
        raise SourceError(
            f"{market.exchange!r} is not an exchange ccxt {ccxt.__version__} supports"
            + (f"; did you mean {', '.join(near)}?" if near else "; see ccxt.exchanges")
        )
    options: dict[str, Any] = {
        "enableRateLimit": True,
        "enableLastJsonResponse": True,  # tells a body that is not JSON (see _call)
        "timeout": int(market.timeout * 1000),
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "defaultType": "spot"},
    }
    if market.rate_limit_ms is not None:
        options["rateLimit"] = market.rate_limit_ms
    exchange = klass(options)
    if market.api_url:
        base = market.api_url.rstrip("/")
        api = exchange.urls.get("api")
        if isinstance(api, dict):
            exchange.urls["api"] = {key: base for key in api}
        else:
            exchange.urls["api"] = base
    return exchange


def fetch_window(
    stored: tuple[dt.date, dt.date] | None, day: dt.date, *, start: dt.date | None = None
) -> tuple[dt.date | None, dt.date] | None:
    """The days ``(first or None for "from the beginning", last)`` to fetch for one coin so the
    project DB holds its history up to ``day``, given its stored ``(first, last)`` range; ``None``
    when nothing is missing. Only what the DB lacks: after its last stored day (a daily run), or
    before its first one (a backfill earlier than anything stored)."""
    if stored is None:
        return (start, day)
    first, last = stored
    if last < day:
        return (last + dt.timedelta(days=1), day)
    if first > day:
        return (start, min(first - dt.timedelta(days=1), day))
    return None


class ExchangeSource(Source):
    """Daily candles of an exchange's markets through ccxt, point in time.

    :param market: the exchange market (:class:`~crypto_ml.markets.ExchangeMarket` or
        :class:`~crypto_ml.markets.SeededMarket`).
    :param stored: ``{coin: (first_day, last_day)}`` already in the project DB; only the missing
        days are asked for (see :func:`fetch_window`).
    :param coins: read only these coin ids (default: the whole universe).
    :param now: the clock deciding which candles have closed (default: the wall clock).
    :param exchange: a ccxt exchange to use instead of :func:`make_exchange`'s.

    After :meth:`read`, :attr:`calls` counts the requests made and :attr:`universe_ids` maps each
    coin id of the day's universe to its symbol.
    """

    def __init__(
        self,
        market,
        *,
        stored: Mapping[str, tuple[dt.date, dt.date]] | None = None,
        coins: Sequence[str] | None = None,
        now: dt.datetime | None = None,
        exchange: ccxt.Exchange | None = None,
    ) -> None:
        if not getattr(market, "is_exchange", False):
            raise ValueError(f"ExchangeSource needs an exchange market, not {market.kind!r}")
        self.market = market
        self.stored = dict(stored or {})
        self.coins = list(coins) if coins is not None else None
        self.now = now
        self.name = market.source_name
        self._exchange = exchange
        self._report = ValidationReport()
        self.calls = 0
        self.universe_ids: dict[str, str] = {}
        #: ``{coin: reason}``: served less history than asked (a depth cap, a later first candle)
        self.limits: dict[str, str] = {}
        #: ``{coin: text}``: facts that are no failure (delisted since, not listed yet on the day)
        self.notes: dict[str, str] = {}
        #: ``{coin: (first day served or None, depth-capped)}`` of the coins fetched
        self.served: dict[str, tuple[dt.date | None, bool]] = {}
        #: ``{coin: (first, last)}`` of the rows read from the seed (``extra.seed``)
        self.seeded: dict[str, tuple[dt.date, dt.date]] = {}
        self.day: dt.date | None = None

    @property
    def exchange(self) -> ccxt.Exchange:
        if self._exchange is None:
            self._exchange = make_exchange(self.market)
        return self._exchange

    # -- requests -----------------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        """One ccxt call, retried with exponential backoff on network errors, rate limits and
        answers that are not JSON (a truncated body)."""
        import ccxt

        attempt = 0
        while True:
            self.calls += 1
            try:
                result = fn(*args, **kwargs)
                if self.exchange.last_http_response and self.exchange.last_json_response is None:
                    raise MalformedAnswer(
                        f"answered with a body that is not JSON: {self.exchange.last_http_response[:80]!r}"
                    )
                return result
            except (ccxt.NetworkError, MalformedAnswer) as exc:
                if attempt >= self.market.retries:
                    raise SourceError(
                        f"{what}: {type(exc).__name__} after {attempt + 1} attempts: {_short(exc)}"
                    ) from None
                delay = self.market.backoff * 2**attempt
                retry_after = _retry_after(self.exchange)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                log.warning(
                    "%s: %s (%s); retry %d of %d in %.1f s",
                    what,
                    type(exc).__name__,
                    _short(exc),
                    attempt + 1,
                    self.market.retries,
                    delay,
                )
                time.sleep(delay)
                attempt += 1

    def _markets(self) -> dict:
        return self._call(f"{self.market.exchange}: load markets", self.exchange.load_markets)

    # -- the universe -------------------------------------------------------------------------
    def universe(self) -> dict[str, str]:
        """``{coin id: symbol}`` of the day's universe; unknown or delisted symbols of an explicit
        list are recorded as failed coins (their stored history stays)."""
        markets = self._markets()
        ex = self.market.exchange
        if self.market.symbols:
            out = {}
            for symbol in self.market.symbols:
                coin = self.market.coin_id(symbol)
                market = markets.get(symbol)
                if market is None or market.get("active") is False:
                    if self._held_on_the_day(coin, symbol, market):
                        out[coin] = symbol
                    continue
                out[coin] = symbol
            return out
        tickers = self._call(f"{ex}: fetch tickers", self.exchange.fetch_tickers)
        ranked = []
        for symbol, ticker in tickers.items():
            market = markets.get(symbol) or {}
            if (
                market.get("spot")
                and market.get("active") is not False
                and market.get("quote") == self.market.quote
            ):
                ranked.append((float(ticker.get("quoteVolume") or 0.0), symbol))
        ranked.sort(key=lambda item: (-item[0], item[1]))
        out = {self.market.coin_id(symbol): symbol for _, symbol in ranked[: self.market.top]}
        # a backfilled day's universe: the stored markets that traded that day, delisted since
        listed = {_coin_or_none(self.market, sym) for sym, m in markets.items() if _spot_symbol(sym, m)}
        for coin, (first, last) in sorted(self.stored.items()):
            if (
                self.market.owns(coin)
                and coin not in out
                and coin not in listed
                and self.day
                and first <= self.day <= last
                and coin.endswith("-" + self.market.quote.lower())
            ):
                self.notes[coin] = (
                    f"{coin} ({self.market.symbol_of(coin)}): delisted on {ex}, last candle "
                    f"{last}; predicted from its stored history"
                )
                out[coin] = self.market.symbol_of(coin)
        return out

    def _held_on_the_day(self, coin: str, symbol: str, market) -> bool:
        """A symbol the exchange no longer lists (or lists as inactive): a delisting when the
        project DB holds its candles (in the day's universe if it traded that day, predicted from
        what is stored), else an unknown symbol. Records the failure when it is one."""
        ex = self.market.exchange
        held = self.stored.get(coin)
        if held is None:
            if market is None:
                self._report.failed_coins[coin] = (
                    f"{coin} ({symbol}) on {ex}: unknown symbol (no such market on {ex}; never "
                    "stored: a typo, or not listed yet)"
                )
            else:
                self._report.failed_coins[coin] = (
                    f"{coin} ({symbol}) on {ex}: market is inactive (halted, or delisted before "
                    "any candle was stored)"
                )
            return False
        first, last = held
        text = f"{coin} ({symbol}): delisted on {ex}, last candle {last}"
        if self.day is not None and first <= self.day <= last:
            self.notes[coin] = text + "; predicted from its stored history"
            return True
        self._report.failed_coins[coin] = text + (
            f"; no candle for {self.day}" if self.day is not None else ""
        )
        return False

    # -- candles ------------------------------------------------------------------------------
    def fetch_coin(self, coin: str, symbol: str, first: dt.date | None, last: dt.date) -> pd.DataFrame:
        """Closed daily candles of one market for days ``first..last`` (``first=None``: from the
        market's first candle), every page, as a raw long frame."""
        import ccxt

        ex = self.market.exchange
        now_ms = _ms_now(self.now)
        until_ms = min(_ms(last) + DAY_MS - 1, now_ms)
        since_ms = _ms(first) if first is not None else 0
        rows: list[dict] = []
        seen_until = -1
        served_first: int | None = None  # the first candle the exchange served (closed or not)
        capped = False
        first_page = True
        while since_ms <= until_ms:
            what = f"{coin} ({symbol}) on {ex}: fetch_ohlcv " + (
                f"since {_iso(since_ms)}" if since_ms else "from the first candle"
            )
            try:
                page = self._call(
                    what,
                    self.exchange.fetch_ohlcv,
                    symbol,
                    "1d",
                    since_ms,
                    self.market.page_limit,
                    {"until": until_ms} if _takes_until(self.exchange) else {},
                )
            except ccxt.BadSymbol as exc:
                raise SourceError(f"{coin} ({symbol}) on {ex}: unknown symbol: {_short(exc)}") from None
            except ccxt.BaseError as exc:
                raise SourceError(f"{what}: {type(exc).__name__}: {_short(exc)}") from None
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise SourceError(f"{what}: malformed answer ({type(exc).__name__}: {exc})") from None
            if not isinstance(page, list):
                raise SourceError(f"{what}: malformed answer ({type(page).__name__}, expected candles)")
            newest = seen_until
            for index, candle in enumerate(page):
                try:
                    ts = int(candle[0])
                except (TypeError, ValueError, IndexError):
                    rows.append(_malformed_row(coin, symbol, candle, what, index))
                    continue
                if served_first is None or ts < served_first:
                    served_first = ts
                if ts <= seen_until:
                    continue  # a candle an earlier page already gave (overlapping pages)
                newest = max(newest, ts)
                if ts + DAY_MS > now_ms or ts > until_ms:
                    continue  # still forming, or after the run's day: never stored
                rows.append(_candle_row(coin, symbol, candle, what, index))
            if first_page and served_first is not None:
                capped = self._capped(served_first, newest, now_ms)
                first_page = False
            if newest <= seen_until:
                break  # an empty page, or nothing new: the market has no more candles
            seen_until = newest
            since_ms = newest + DAY_MS
        self.served[coin] = (None if served_first is None else _day(served_first), capped)
        return pd.DataFrame(rows, columns=_RAW_COLUMNS)

    @property
    def depth(self) -> int | None:
        """Candles the exchange serves a request at most (ccxt's ``features``: Kraken 720, Binance
        1,000); a depth cap when the exchange also ignores an older ``since`` (see :meth:`_capped`)."""
        try:
            return int(self.exchange.features["spot"]["fetchOHLCV"]["limit"])
        except (AttributeError, KeyError, TypeError, ValueError):
            return None

    def _capped(self, first_ms: int, newest_ms: int, now_ms: int) -> bool:
        """Whether a first page was cut by the exchange's depth: it holds the newest candles (up to
        the one forming now) and spans the exchange's whole limit, so ``since`` was ignored. A page
        that starts at an old ``since`` and stops ``limit`` days later (Binance's) is not."""
        depth = self.depth
        if not depth or self.market.page_limit < depth:
            return False
        reaches_now = newest_ms + 2 * DAY_MS > now_ms
        return reaches_now and (now_ms - first_ms) // DAY_MS + 1 >= depth

    def _limit_reason(self, coin: str, symbol: str, window, served) -> tuple[str, str] | None:
        """``("failed" | "limited" | "note", text)`` when the exchange served less than asked."""
        ex = self.market.exchange
        first, last = window
        served_first, capped = served
        where = f"{coin} ({symbol}) on {ex}"
        seed_hint = (
            "; to have those days, seed them from CSV files in the same setting: "
            'extra.seed=<folder> (docs/markets.md, section "Exchanges\' limits and deep history")'
        )
        cap = (
            f"{ex} serves only its {self.depth} most recent daily candles, whatever is asked"
            if capped
            else None
        )
        if served_first is None:
            return "note", f"{where}: no daily candle served yet (listed today?)"
        if served_first > last:
            missing = (served_first - (first or last)).days
            if capped:
                return "failed", (
                    f"{where}: day {last} is outside what {ex} serves: {cap}, from {served_first}; "
                    f"{missing} days missing ({first or last}..{served_first - dt.timedelta(days=1)})"
                    + seed_hint
                )
            return "note", f"{where}: first candle {served_first}, after {last}: not listed yet then"
        if first is not None and served_first > first:
            missing = (served_first - first).days
            why = cap if capped else f"its first candle on {ex} is {served_first}"
            return "limited", (
                f"{where}: asked from {first}, served from {served_first} ({why}): "
                f"{missing} days missing ({first}..{served_first - dt.timedelta(days=1)})" + seed_hint
            )
        if first is None and capped:
            return "limited", (
                f"{where}: history before {served_first} is cut ({cap}); how many "
                "days are missing is unknown: set extra.start to the market's first "
                "day to count them" + seed_hint
            )
        return None

    def _seed_rows(
        self, coins: Mapping[str, str], day: dt.date, held: dict[str, tuple[dt.date, dt.date]]
    ) -> pd.DataFrame:
        """The seed's rows (``extra.seed``, a CSV folder) of the day's coins that the project DB
        lacks, up to ``day``; ``held`` grows by the seed's days, so the exchange is asked only
        for the days after them. A seed coin outside the universe is said, not stored."""
        from crypto_ml.data.validation import _parse_dates
        from crypto_ml.sources.csv import CSVSource

        raw = CSVSource(self.market.seed).read()
        if self.market.prefix:  # a member of several markets: the seed's files name the exchange's ids
            raw["coin"] = [c if self.market.owns(c) else f"{self.market.prefix}.{c}" for c in raw["coin"]]
        dates = _parse_dates(raw["date"])
        for coin in sorted(set(raw["coin"]) - set(coins)):
            self.notes[coin] = (
                f"{coin}: in the seed {self.market.seed} but not in the market's "
                f"universe on {day}: not stored (coin ids are the exchange's, e.g. "
                f"{next(iter(coins), 'btc-usdt')})"
            )
            log.warning("%s", self.notes[coin])
        keep = raw["coin"].isin(list(coins)) & (dates.isna() | (dates <= pd.Timestamp(day)))
        parts = []
        for coin, part in raw[keep].groupby("coin", sort=True):
            d = dates[part.index]
            stored = self.stored.get(coin)
            if stored is not None:
                lacking = d.isna() | (d < pd.Timestamp(stored[0])) | (d > pd.Timestamp(stored[1]))
                part, d = part[lacking], d[lacking]
            if part.empty or d.isna().all():
                if not part.empty:
                    parts.append(part)  # unreadable dates: validation quarantines them, by row
                continue
            first, last = d.min().date(), d.max().date()
            self.seeded[coin] = (first, last)
            lo, hi = (first, last) if stored is None else (min(first, stored[0]), max(last, stored[1]))
            held[coin] = (lo, hi)
            parts.append(part)
        if not parts:
            return pd.DataFrame(columns=_RAW_COLUMNS)
        return pd.concat(parts, ignore_index=True)[_RAW_COLUMNS]

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        now = dt.datetime.fromtimestamp(_ms_now(self.now) / 1000, dt.UTC)
        day = self.market.market_day(as_of if as_of is not None else now.date(), now=now)
        self._report = ValidationReport()
        self.limits, self.notes, self.served, self.seeded = {}, {}, {}, {}
        self.day = day
        self.universe_ids = self.universe()
        if not self.universe_ids and self._report.failed_coins:
            first = next(iter(self._report.failed_coins.values()))
            raise SourceError(f"no symbol of the universe is a market on {self.market.exchange}: {first}")
        coins = (
            self.universe_ids
            if self.coins is None
            else {c: self.universe_ids[c] for c in self.coins if c in self.universe_ids}
        )
        frames, attempted, failed = [], 0, 0
        held = dict(self.stored)
        if self.market.seed:
            frames.append(self._seed_rows(coins, day, held))
        for coin, symbol in coins.items():
            if coin in self.notes and "delisted on" in self.notes[coin]:
                continue  # held on the day; the exchange serves it no more
            window = fetch_window(held.get(coin), day, start=self.market.start)
            if window is None:
                continue  # the project DB (or the seed) already holds this coin up to the day
            attempted += 1
            try:
                frames.append(self.fetch_coin(coin, symbol, *window))
            except SourceError as exc:
                log.error("%s", exc)
                self._report.failed_coins[coin] = str(exc)
                failed += 1
                continue
            reason = self._limit_reason(coin, symbol, window, self.served[coin])
            if reason is not None:
                what, text = reason
                log.warning("%s", text)
                if what == "failed":
                    self._report.failed_coins[coin] = text
                    failed += 1
                elif what == "limited":
                    self.limits[coin] = text
                else:
                    self.notes[coin] = text
        if attempted > 1 and failed == attempted:
            first = next(iter(self._report.failed_coins.values()))
            raise SourceError(f"every coin failed to load from {self.market.exchange}; first: {first}")
        if not frames:
            return pd.DataFrame(columns=_RAW_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    def seed_label_of(self, coin: str) -> str | None:
        return f"csv-seed:{self.market.seed}" if self.market.seed else None

    def coin_metadata(self) -> pd.DataFrame:
        ids = self.universe_ids
        return pd.DataFrame(
            {
                "coin": list(ids),
                "name": list(ids.values()),
                "symbol": list(ids.values()),
                "rank": range(1, len(ids) + 1),
            }
        )

    @property
    def report(self) -> ValidationReport:
        return self._report


def _candle_row(coin: str, symbol: str, candle, origin: str, index: int) -> dict:
    row = dict.fromkeys(_RAW_COLUMNS, "")
    row.update(coin=coin, name=symbol, origin=origin, line=index)
    if not isinstance(candle, (list, tuple)) or len(candle) < 5:
        return _malformed_row(coin, symbol, candle, origin, index)
    row["date"] = dt.datetime.fromtimestamp(int(candle[0]) / 1000, dt.UTC).date().isoformat()
    values = [("" if v is None else str(v)) for v in (list(candle) + [None])[1:6]]
    row.update(open=values[0], high=values[1], low=values[2], close=values[3], volume=values[4])
    return row


def _malformed_row(coin: str, symbol: str, candle, origin: str, index: int) -> dict:
    """A candle ccxt could not parse: kept as text so validation quarantines it by coin and row."""
    row = dict.fromkeys(_RAW_COLUMNS, "")
    row.update(
        coin=coin, name=symbol, origin=origin, line=index, date=f"<malformed candle {str(candle)[:60]}>"
    )
    return row


def _retry_after(exchange) -> float | None:
    headers = getattr(exchange, "last_response_headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def _ms_now(now: dt.datetime | None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return int(now.timestamp() * 1000)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


_UNTIL: dict[type, bool] = {}


def _takes_until(exchange) -> bool:
    """Whether ccxt's ``fetch_ohlcv`` of this exchange reads an ``until`` param (Binance's maps it
    to ``endTime``); to one that does not (Kraken's) it would go to the exchange as an unknown
    query argument."""
    klass = type(exchange)
    if klass not in _UNTIL:
        import inspect

        try:
            _UNTIL[klass] = "'until'" in inspect.getsource(klass.fetch_ohlcv)
        except (OSError, TypeError):
            _UNTIL[klass] = False
    return _UNTIL[klass]


def _day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()


def _spot_symbol(symbol: str, market: dict) -> bool:
    return bool(market.get("spot")) and market.get("active") is not False


def _coin_or_none(market, symbol: str) -> str | None:
    try:
        return market.coin_id(symbol)
    except ValueError:
        return None
