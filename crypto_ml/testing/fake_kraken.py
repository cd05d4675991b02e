"""A second exchange shape for tests and benchmarks: Kraken's public REST API on 127.0.0.1.

Not Binance: it answers what ccxt's ``kraken`` class asks, in Kraken's documented shapes
(https://docs.kraken.com/api-reference/market-data/), with the habits that bite a daily pipeline:

- ``GET /0/public/Assets``: the assets of the listed pairs (ccxt's ``load_markets`` asks first);
- ``GET /0/public/AssetPairs``: the pairs under Kraken's own names (``XXBTZUSD`` for BTC/USD,
  asset codes ``XXBT``/``ZUSD``, ``altname`` ``XBTUSD``, ``wsname`` ``XBT/USD``), ``status``
  ``online``; a pair is absent before its listing and **gone** once delisted (Kraken drops it
  from the listing: nothing tells a delisting from a typo but what was stored before);
- ``GET /0/public/Ticker``: every pair's 24 h statistics (``v[1]`` base volume, ``c[0]`` last);
- ``GET /0/public/OHLC?pair=&interval=1440&since=``: daily candles ``[time, open, high, low,
  close, vwap, volume, count]`` with **second** timestamps and string values, **at most the 720
  most recent** whatever ``since`` asks (Kraken's depth cap), the **forming candle last**, and a
  ``last`` cursor (the newest committed candle's time);
- errors **inside HTTP 200 bodies**: ``{"error": ["EQuery:Unknown asset pair"], "result": {}}``.

Each market (:class:`~crypto_ml.testing.fake_exchange.FakeMarket`, the Binance fake's, so both
shapes serve the same histories) has a first day and optionally a last one. Faults are queued per
symbol for its next OHLC calls: ``"429"`` (HTTP 429 with ``Retry-After``), ``"ratelimit"`` (200
with ``EAPI:Rate limit exceeded``), ``"busy"`` (200 with ``EService:Unavailable``), ``"500"``,
``"502"``, ``"503"`` (an HTML page), ``"timeout"`` (answers after ``slow_seconds``),
``"malformed"`` (200 with a body that is not JSON), ``"unknown"`` (200 with
``EQuery:Unknown asset pair``). Every request is counted by path and OHLC calls by pair.

Point ccxt at it with the market setting's ``api_url`` (``server.api_url``)::

    crypto-ml-market://kraken?symbols=BTC/USD,ETH/USD&api_url=http://127.0.0.1:PORT
"""

from __future__ import annotations

import collections
import datetime as dt
import time

from crypto_ml.testing.fake_exchange import FakeMarket
from crypto_ml.testing.fake_http import FakeHandler, FakeServer

__all__ = ["DEPTH", "FakeKraken", "FakeMarket", "kraken_asset", "kraken_pair"]

#: Daily candles Kraken serves at most (the most recent ones, the forming one included).
DEPTH = 720
#: Kraken's names of the assets it lists with an X/Z prefix.
_ASSETS = {
    "BTC": "XXBT",
    "ETH": "XETH",
    "LTC": "XLTC",
    "XRP": "XXRP",
    "XLM": "XXLM",
    "DOGE": "XXDG",
    "USD": "ZUSD",
    "EUR": "ZEUR",
    "GBP": "ZGBP",
    "JPY": "ZJPY",
}
_ALT = {"BTC": "XBT", "DOGE": "XDG"}


def kraken_asset(code: str) -> str:
    """``BTC`` ↦ ``XXBT``, ``USD`` ↦ ``ZUSD``, ``SOL`` ↦ ``SOL``."""
    return _ASSETS.get(code, code)


def kraken_pair(market: FakeMarket) -> tuple[str, str, str]:
    """``(pair key, altname, wsname)``: ``("XXBTZUSD", "XBTUSD", "XBT/USD")`` for BTC/USD."""
    base, quote = _ALT.get(market.base, market.base), _ALT.get(market.quote, market.quote)
    altname = f"{base}{quote}"
    if market.base in _ASSETS and market.quote in _ASSETS:
        key = kraken_asset(market.base) + kraken_asset(market.quote)
    else:
        key = altname
    return key, altname, f"{base}/{quote}"


class FakeKraken(FakeServer):
    """The server; use as a context manager. ``today`` follows the wall clock unless set.

    :param requests_per_second: answer ``EAPI:Rate limit exceeded`` (in a 200) beyond this many
        requests in one second (``None``: no limit).
    """

    def __init__(
        self,
        markets: list[FakeMarket],
        *,
        today: dt.date | None = None,
        slow_seconds: float = 3.0,
        requests_per_second: float | None = None,
    ) -> None:
        super().__init__(today=today)
        self.markets: dict[str, FakeMarket] = {}
        for m in markets:
            self.list(m)
        self.slow_seconds = slow_seconds
        self.requests_per_second = requests_per_second
        self.faults: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.ohlc_calls: collections.Counter = collections.Counter()
        self._recent: collections.deque = collections.deque()

    # -- control ------------------------------------------------------------------------------
    def list(self, market: FakeMarket) -> None:
        self.markets[kraken_pair(market)[0]] = market

    def market(self, symbol: str) -> FakeMarket:
        return next(m for m in self.markets.values() if m.symbol == symbol)

    def add_fault(self, symbol: str, *faults: str) -> None:
        """Queue faults for the next OHLC calls of ``symbol`` (``BTC/USD``)."""
        self.faults[kraken_pair(self.market(symbol))[0]].extend(faults)

    def delist(self, symbol: str, last: dt.date) -> None:
        self.market(symbol).last = last

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.ohlc_calls.clear()

    @property
    def api_url(self) -> str:
        return self.url

    # -- answers ------------------------------------------------------------------------------
    def _listed(self) -> dict[str, FakeMarket]:
        """Pairs listed today: listed already, not delisted (Kraken drops a delisted pair)."""
        today = self.today
        return {
            k: m for k, m in self.markets.items() if m.first <= today and (m.last is None or m.last >= today)
        }

    def _lookup(self, name: str) -> tuple[str, FakeMarket] | None:
        for key, m in self._listed().items():
            if name in (key, kraken_pair(m)[1]):
                return key, m
        return None

    def _over_limit(self) -> bool:
        if self.requests_per_second is None:
            return False
        now = time.monotonic()
        with self._lock:
            while self._recent and self._recent[0] < now - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.requests_per_second:
                return True
            self._recent.append(now)
        return False

    def asset_pairs(self, params: dict) -> dict:
        out = {}
        for key, m in self._listed().items():
            _, altname, wsname = kraken_pair(m)
            out[key] = {
                "altname": altname,
                "wsname": wsname,
                "aclass_base": "currency",
                "base": kraken_asset(m.base),
                "aclass_quote": "currency",
                "quote": kraken_asset(m.quote),
                "lot": "unit",
                "cost_decimals": 5,
                "pair_decimals": 1,
                "lot_decimals": 8,
                "lot_multiplier": 1,
                "leverage_buy": [],
                "leverage_sell": [],
                "fees": [[0, 0.4], [10000, 0.35]],
                "fees_maker": [[0, 0.25], [10000, 0.2]],
                "fee_volume_currency": "ZUSD",
                "margin_call": 80,
                "margin_stop": 40,
                "ordermin": "0.0001",
                "costmin": "0.5",
                "tick_size": "0.1",
                "status": "online",
            }
        return {"error": [], "result": out}

    def assets(self, params: dict) -> dict:
        """The assets of the listed pairs (ccxt's ``load_markets`` reads them first)."""
        out = {}
        for m in self._listed().values():
            for code in (m.base, m.quote):
                out[kraken_asset(code)] = {
                    "aclass": "currency",
                    "altname": _ALT.get(code, code),
                    "decimals": 10,
                    "display_decimals": 5,
                    "collateral_value": 1.0,
                    "status": "enabled",
                }
        return {"error": [], "result": out}

    def ticker(self, params: dict) -> dict:
        out = {}
        for key, m in self._listed().items():
            candles = m.candles(self.today)
            if not candles:
                continue
            c = candles[-1]
            price, vol = f"{c[4]:.5f}", f"{c[5]:.8f}"
            out[key] = {
                "a": [price, "1", "1.000"],
                "b": [price, "1", "1.000"],
                "c": [price, "0.1"],
                "v": [vol, vol],
                "p": [price, price],
                "t": [100, 100],
                "l": [f"{c[3]:.5f}"] * 2,
                "h": [f"{c[2]:.5f}"] * 2,
                "o": f"{c[1]:.5f}",
            }
        return {"error": [], "result": out}

    def ohlc(self, params: dict) -> tuple[int, object, dict]:
        found = self._lookup(params.get("pair", ""))
        if found is None:
            return 200, {"error": ["EQuery:Unknown asset pair"]}, {}
        key, market = found
        fault = None
        with self._lock:
            self.ohlc_calls[key] += 1
            if self.faults[key]:
                fault = self.faults[key].popleft()
        if fault == "429":
            return 429, "Too many requests", {"Retry-After": "1"}
        if fault == "ratelimit":
            return 200, {"error": ["EAPI:Rate limit exceeded"]}, {}
        if fault == "busy":
            return 200, {"error": ["EService:Unavailable"]}, {}
        if fault == "unknown":
            return 200, {"error": ["EQuery:Unknown asset pair"]}, {}
        if fault in ("500", "502", "503"):
            return int(fault), "<html><body>upstream unavailable</body></html>", {}
        if fault == "timeout":
            time.sleep(self.slow_seconds)
        if fault == "malformed":
            return 200, b'{"error":[],"result":{"' + key.encode() + b'":[[1700000000,"1.0"', {}
        if params.get("interval", "1") != "1440":
            return 200, {"error": ["EGeneral:Invalid arguments"]}, {}
        try:
            since = int(float(params.get("since") or 0))
        except ValueError:
            return 200, {"error": ["EGeneral:Invalid arguments"]}, {}
        window = market.candles(self.today)[-DEPTH:]  # the most recent 720, the forming one last
        page = [c for c in window if c[0] // 1000 > since]
        rows = [
            [
                c[0] // 1000,
                f"{c[1]:.5f}",
                f"{c[2]:.5f}",
                f"{c[3]:.5f}",
                f"{c[4]:.5f}",
                f"{(c[1] + c[4]) / 2:.5f}",
                f"{c[5]:.8f}",
                100,
            ]
            for c in page
        ]
        today_ms = int(
            dt.datetime(self.today.year, self.today.month, self.today.day, tzinfo=dt.UTC).timestamp() * 1000
        )
        committed = [c[0] // 1000 for c in window if c[0] < today_ms]  # today's is forming
        last = committed[-1] if committed else since
        return 200, {"error": [], "result": {key: rows, "last": last}}, {}


class _Handler(FakeHandler):
    exchange: FakeKraken

    def answer(self, path: str, params: dict[str, str]) -> None:
        ex = self.exchange
        if ex._over_limit():
            self._send(200, {"error": ["EAPI:Rate limit exceeded"]})
            return
        if path == "/0/public/Assets":
            self._send(200, ex.assets(params))
        elif path == "/0/public/AssetPairs":
            self._send(200, ex.asset_pairs(params))
        elif path == "/0/public/Ticker":
            self._send(200, ex.ticker(params))
        elif path == "/0/public/OHLC":
            self._send(*ex.ohlc(params))
        elif path == "/0/public/Time":
            now = int(time.time())
            self._send(200, {"error": [], "result": {"unixtime": now, "rfc1123": ""}})
        else:
            self._send(404, {"error": [f"EGeneral:Unknown method {path}"]})


FakeKraken.handler = _Handler
