"""A local exchange for tests and benchmarks: Binance's public market-data REST API on 127.0.0.1.

It answers the three endpoints ccxt's ``binance`` needs for public data, in Binance's documented
formats (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints):

- ``GET /api/v3/exchangeInfo``: the markets (``status`` ``TRADING``, or ``BREAK`` once delisted);
- ``GET /api/v3/ticker/24hr``: every market's 24 h statistics (``quoteVolume`` ranks the top N);
- ``GET /api/v3/klines?symbol=BTCUSDT&interval=1d&startTime=&endTime=&limit=``: daily candles,
  at most ``limit`` (default 500, at most 1000) a page, including **today's candle, still
  forming**, as the real API does.

Each market has a first day (listed in the middle of the history, if you like) and optionally a
last day (delisted after it). Faults are queued per symbol and served by the next klines calls:
``"429"`` (with ``Retry-After``), ``"418"``, ``"500"``, ``"503"``, ``"timeout"`` (answers after
``slow_seconds``), ``"malformed"`` (200 with a body that is not JSON), ``"overlap"`` (the page
starts two days before ``startTime``, repeating candles), ``"duplicate"`` (a candle twice in the
page). A request-weight limit per minute (Binance publishes 6,000; a klines call weighs 2) answers
429 once exceeded. Every request is counted, by path and by symbol.

Point ccxt at it with the market setting's ``api_url`` (``server.api_url``), e.g.
``crypto-ml-market://binance?symbols=BTC/USDT&api_url=http://127.0.0.1:PORT/api/v3``.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import random
import time
from dataclasses import dataclass, field

from crypto_ml.testing.fake_http import FakeHandler, FakeServer

DAY_MS = 86_400_000


@dataclass
class FakeMarket:
    """One spot market: ``BASE/QUOTE`` listed on ``first`` (and delisted after ``last``)."""

    base: str
    quote: str = "USDT"
    first: dt.date = dt.date(2024, 1, 1)
    last: dt.date | None = None
    price: float = 100.0
    volume: float = 1_000.0
    seed: int = 0
    #: days the exchange has no candle for (a gap in its history)
    missing: set = field(default_factory=set)
    _candles: list | None = field(default=None, repr=False)
    _key: tuple | None = field(default=None, repr=False)

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def id(self) -> str:
        return f"{self.base}{self.quote}"

    def candles(self, today: dt.date) -> list[list]:
        """Daily candles ``[open_ms, open, high, low, close, volume]`` from ``first`` to today
        (or ``last``), a seeded random walk: the same market gives the same history."""
        end = min(today, self.last) if self.last else today
        key = (end, frozenset(self.missing))
        if self._key != key:
            rng = random.Random(f"{self.symbol}:{self.seed}")
            out, close = [], self.price
            day = self.first
            while day <= end:
                open_ = close
                close = max(open_ * math.exp(rng.gauss(0.0, 0.03)), 1e-8)
                high = max(open_, close) * (1 + abs(rng.gauss(0, 0.01)))
                low = min(open_, close) * (1 - abs(rng.gauss(0, 0.01)))
                ms = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
                volume = self.volume * (1 + rng.random())
                if day not in self.missing:
                    out.append([ms, open_, high, low, close, volume])
                day += dt.timedelta(days=1)
            self._candles, self._key = out, key
        return self._candles

    def closes(self, today: dt.date) -> dict[str, float]:
        """``{YYYY-MM-DD: close}`` as a client would store them."""
        return {
            dt.datetime.fromtimestamp(c[0] / 1000, dt.UTC).date().isoformat(): float(f"{c[4]:.8f}")
            for c in self.candles(today)
        }


class FakeExchange(FakeServer):
    """The server; use as a context manager. ``today`` follows the wall clock unless set."""

    def __init__(
        self,
        markets: list[FakeMarket],
        *,
        today: dt.date | None = None,
        weight_limit_per_minute: int | None = 6000,
        slow_seconds: float = 3.0,
    ) -> None:
        super().__init__(today=today)
        self.markets = {m.id: m for m in markets}
        self.weight_limit = weight_limit_per_minute
        self.slow_seconds = slow_seconds
        self.faults: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.klines_calls: collections.Counter = collections.Counter()
        self._weights: collections.deque = collections.deque()

    # -- control ------------------------------------------------------------------------------
    def add_fault(self, symbol: str, *faults: str) -> None:
        """Queue faults for the next klines calls of ``symbol`` (``BTC/USDT``)."""
        self.faults[symbol.replace("/", "")].extend(faults)

    def delist(self, symbol: str, last: dt.date) -> None:
        self.markets[symbol.replace("/", "")].last = last

    def list(self, market: FakeMarket) -> None:
        self.markets[market.id] = market

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.klines_calls.clear()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"

    # -- answers ------------------------------------------------------------------------------
    def _over_limit(self, weight: int) -> bool:
        if self.weight_limit is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._weights and self._weights[0][0] < now - 60:
                self._weights.popleft()
            used = sum(w for _, w in self._weights)
            if used + weight > self.weight_limit:
                return True
            self._weights.append((now, weight))
        return False

    def exchange_info(self) -> dict:
        today = self.today
        symbols = []
        for m in self.markets.values():
            if m.first > today:
                continue  # not listed yet
            delisted = m.last is not None and m.last < today
            symbols.append(
                {
                    "symbol": m.id,
                    "status": "BREAK" if delisted else "TRADING",
                    "baseAsset": m.base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": m.quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "MARKET"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "permissions": ["SPOT"],
                    "permissionSets": [["SPOT"]],
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": "0.00000001",
                            "maxPrice": "1000000.00000000",
                            "tickSize": "0.00000001",
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": "0.00000100",
                            "maxQty": "9000.00000000",
                            "stepSize": "0.00000100",
                        },
                    ],
                }
            )
        now = int(time.time() * 1000)
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def tickers(self) -> list[dict]:
        out = []
        now = int(time.time() * 1000)
        for m in self.markets.values():
            candles = m.candles(self.today) if m.first <= self.today else []
            if not candles:
                continue
            last = candles[-1]
            out.append(
                {
                    "symbol": m.id,
                    "priceChange": "0",
                    "priceChangePercent": "0",
                    "weightedAvgPrice": f"{last[4]:.8f}",
                    "prevClosePrice": f"{last[1]:.8f}",
                    "lastPrice": f"{last[4]:.8f}",
                    "lastQty": "1",
                    "bidPrice": f"{last[4]:.8f}",
                    "bidQty": "1",
                    "askPrice": f"{last[4]:.8f}",
                    "askQty": "1",
                    "openPrice": f"{last[1]:.8f}",
                    "highPrice": f"{last[2]:.8f}",
                    "lowPrice": f"{last[3]:.8f}",
                    "volume": f"{last[5]:.8f}",
                    "quoteVolume": f"{last[5] * last[4]:.8f}",
                    "openTime": now - DAY_MS,
                    "closeTime": now,
                    "firstId": 0,
                    "lastId": 1,
                    "count": 1,
                }
            )
        return out

    def klines(self, params: dict) -> tuple[int, object, dict]:
        symbol = params.get("symbol", "")
        market = self.markets.get(symbol)
        if market is None or market.first > self.today:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
        fault = None
        with self._lock:
            self.klines_calls[symbol] += 1
            if self.faults[symbol]:
                fault = self.faults[symbol].popleft()
        if fault in ("429", "418"):
            return (
                int(fault),
                {"code": -1003, "msg": "Too many requests; please use the websocket."},
                {"Retry-After": "1"},
            )
        if fault in ("500", "503"):
            return int(fault), "<html>upstream unavailable</html>", {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
        if fault == "malformed":
            return 200, b'[[1700000000000, "1.0", "2.0"', {}
        limit = min(int(params.get("limit", 500)), 1000)
        start = int(params.get("startTime", 0))
        end = int(params.get("endTime", 2**62))
        if fault == "overlap":
            start -= 2 * DAY_MS
        page = [c for c in market.candles(self.today) if start <= c[0] <= end][:limit]
        if fault == "duplicate" and page:
            page.insert(1, page[0])
        body = [
            [
                c[0],
                f"{c[1]:.8f}",
                f"{c[2]:.8f}",
                f"{c[3]:.8f}",
                f"{c[4]:.8f}",
                f"{c[5]:.8f}",
                c[0] + DAY_MS - 1,
                f"{c[5] * c[4]:.8f}",
                100,
                "0",
                "0",
                "0",
            ]
            for c in page
        ]
        return 200, body, {}


class _Handler(FakeHandler):
    exchange: FakeExchange

    def answer(self, path: str, params: dict[str, str]) -> None:
        ex = self.exchange
        weight = {"/api/v3/klines": 2, "/api/v3/ticker/24hr": 80, "/api/v3/exchangeInfo": 20}.get(path, 1)
        if ex._over_limit(weight):
            self._send(
                429,
                {
                    "code": -1003,
                    "msg": "Too much request weight used; current limit is "
                    f"{ex.weight_limit} request weight per 1 MINUTE.",
                },
                {"Retry-After": "1"},
            )
            return
        if path == "/api/v3/exchangeInfo":
            self._send(200, ex.exchange_info())
        elif path == "/api/v3/ticker/24hr":
            self._send(200, ex.tickers())
        elif path == "/api/v3/klines":
            self._send(*ex.klines(params))
        elif path == "/api/v3/time":
            self._send(200, {"serverTime": int(time.time() * 1000)})
        elif path == "/api/v3/ping":
            self._send(200, {})
        else:
            self._send(404, {"code": -1, "msg": f"unknown path {path}"})


FakeExchange.handler = _Handler
