"""Live daily OHLCV over HTTP from Binance's public market-data REST API.

Endpoint: ``GET /api/v3/klines?symbol=BTCUSDT&interval=1d&startTime=..&endTime=..&limit=1000``
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints). Each
kline is an array ``[open_time_ms, open, high, low, close, base_volume, close_time_ms,
quote_volume, trades, taker_base, taker_quote, ignore]`` with prices as strings. Errors come back as
``{"code": -1121, "msg": "Invalid symbol."}`` with a 4xx status; breaking the request-weight limit
answers HTTP 429 with a ``Retry-After`` header (seconds).

Volume is the quote-asset volume (USD for USDT pairs, like CoinMarketCap's "Volume"); Binance
does not publish market cap, so it stays empty.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd

from crypto_ml.sources.base import Source, SourceError, as_date
from crypto_ml.validation import ValidationReport

DEFAULT_BASE_URL = "https://api.binance.com"
KLINES_PATH = "/api/v3/klines"
MAX_LIMIT = 1000
_DAY_MS = 86_400_000


class BinanceSource(Source):
    """Daily klines for a list of coins from a Binance-compatible REST API.

    :param coins: coin ids (``"bitcoin"``) or symbols (``"BTC"``); default: every bundled coin.
    :param base_url: API root; point it at a local server in tests.
    :param quote: quote asset, the pair is ``<SYMBOL><QUOTE>`` (``BTCUSDT``).
    :param symbols: overrides of coin id → base symbol.
    :param start: first day to fetch (default: as far back as the API has, 1000 days a page).
    :param timeout: seconds for connect and for read of one request.
    :param retries: retries of one request on connection errors, timeouts, 429 and 5xx, with
        exponential backoff (``backoff`` × 2**n seconds) that honours ``Retry-After``.

    A coin that fails (unknown symbol, still rate-limited or timing out after the retries) is
    recorded in :attr:`report` ``.failed_coins`` with the reason; the other coins go on. If every
    coin fails, :meth:`read` raises :class:`SourceError`.
    """

    name = "binance"

    def __init__(
        self,
        coins: Sequence[str] | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        quote: str = "USDT",
        symbols: Mapping[str, str] | None = None,
        start: dt.date | str | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.coins = list(coins) if coins is not None else None
        self.base_url = base_url.rstrip("/")
        self.quote = quote
        self.symbols = dict(symbols or {})
        self.start = as_date(start)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._report = ValidationReport()
        self._session = None

    # -- HTTP ---------------------------------------------------------------------------------
    @property
    def session(self):
        if self._session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            retry = Retry(
                total=self.retries,
                connect=self.retries,
                read=self.retries,
                status=self.retries,
                backoff_factor=self.backoff,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=frozenset({"GET"}),
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            session.headers["User-Agent"] = "crypto-ml"
            self._session = session
        return self._session

    def _get(self, params: dict) -> list:
        import requests

        url = self.base_url + KLINES_PATH
        try:
            resp = self.session.get(url, params=params, timeout=(self.timeout, self.timeout))
        except requests.exceptions.RetryError as exc:
            raise SourceError(f"GET {url} gave up after {self.retries} retries: {exc}") from None
        except requests.exceptions.Timeout:
            raise SourceError(
                f"GET {url} timed out ({self.timeout:g} s) after {self.retries} retries"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise SourceError(f"GET {url} could not connect after {self.retries} retries: {exc}") from None
        if resp.status_code != 200:
            detail = resp.text[:200]
            try:
                body = resp.json()
                detail = f"{body.get('msg')} (code {body.get('code')})"
            except ValueError:
                pass
            if resp.status_code == 429:
                detail = f"rate limited, still after {self.retries} retries: {detail}"
            raise SourceError(f"GET {url} answered HTTP {resp.status_code}: {detail}")
        try:
            data = resp.json()
        except ValueError:
            raise SourceError(f"GET {url} answered 200 with a body that is not JSON") from None
        if not isinstance(data, list):
            raise SourceError(f"GET {url} answered 200 with {type(data).__name__}, expected a list of klines")
        return data

    # -- Source -------------------------------------------------------------------------------
    def symbol_for(self, coin: str) -> str:
        if coin in self.symbols:
            return f"{self.symbols[coin]}{self.quote}".upper()
        meta = _bundled_symbols()
        base = meta.get(coin.lower(), coin)
        return f"{base}{self.quote}".upper()

    def fetch_coin(self, coin: str, *, as_of: dt.date | None = None) -> pd.DataFrame:
        """Every daily kline of one coin up to ``as_of`` (all pages), as a raw long frame."""
        symbol = self.symbol_for(coin)
        start_ms = _ms(self.start) if self.start else 0
        end_ms = _ms(as_of) + _DAY_MS - 1 if as_of else None
        rows: list[dict] = []
        while True:
            params = {"symbol": symbol, "interval": "1d", "startTime": start_ms, "limit": MAX_LIMIT}
            if end_ms is not None:
                params["endTime"] = end_ms
            try:
                page = self._get(params)
            except SourceError as exc:
                raise SourceError(f"{coin} ({symbol}): {exc}") from None
            for k, item in enumerate(page):
                origin = f"{self.base_url}{KLINES_PATH}?symbol={symbol}&startTime={start_ms}"
                rows.append(_kline_row(coin, symbol, item, origin, k))
            if len(page) < MAX_LIMIT:
                break
            try:
                start_ms = int(page[-1][0]) + _DAY_MS
            except (TypeError, ValueError, IndexError):
                break
        return pd.DataFrame(rows, columns=_RAW_COLUMNS)

    def read(self, *, as_of: dt.date | None = None) -> pd.DataFrame:
        coins = self.coins if self.coins is not None else sorted(_bundled_symbols())
        self._report = ValidationReport()
        frames = []
        for coin in coins:
            try:
                frames.append(self.fetch_coin(coin, as_of=as_date(as_of)))
            except SourceError as exc:
                self._report.failed_coins[coin] = str(exc)
        if coins and len(self._report.failed_coins) == len(coins):
            first = next(iter(self._report.failed_coins.values()))
            raise SourceError(f"every coin failed to load from {self.base_url}; first: {first}")
        if not frames:
            return pd.DataFrame(columns=_RAW_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    @property
    def report(self) -> ValidationReport:
        return self._report


_RAW_COLUMNS = [
    "coin", "name", "date", "open", "high", "low", "close", "volume", "market_cap", "origin", "line",
]


def _kline_row(coin: str, symbol: str, item, origin: str, index: int) -> dict:
    """One kline → one raw row; a malformed item keeps its text so validation can name it."""
    row = dict.fromkeys(_RAW_COLUMNS, "")
    row.update(coin=coin, name=coin, origin=origin, line=index)
    if not isinstance(item, list) or len(item) < 8:
        row["date"] = f"<malformed kline {str(item)[:60]}>"
        return row
    try:
        row["date"] = dt.datetime.fromtimestamp(int(item[0]) / 1000, dt.UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError):
        row["date"] = str(item[0])
    row.update(
        open=str(item[1]), high=str(item[2]), low=str(item[3]), close=str(item[4]), volume=str(item[7])
    )
    return row


def _ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


_SYMBOLS: dict[str, str] | None = None


def _bundled_symbols() -> dict[str, str]:
    global _SYMBOLS
    if _SYMBOLS is None:
        from crypto_ml.sources.bundled import BundledSource

        meta = BundledSource().coin_metadata()
        _SYMBOLS = dict(zip(meta["coin"], meta["symbol"]))
    return _SYMBOLS
