"""Which market the pipeline reads: one setting, the Airflow Connection ``crypto_ml_market``.

Three kinds of market (the Connection's *host* field names one):

- ``replay`` (the default, no network): the bundled 2013–2017 history revealed day by day, a run's
  day mapped onto it with ``CRYPTO_ML_REPLAY_ANCHOR_REAL`` ↦ ``CRYPTO_ML_REPLAY_ANCHOR_HISTORY``.
- ``csv``: a folder of the user's own CSV files (``extra.path``), re-read every day.
- an exchange id that ccxt supports (``binance``, ``kraken``, ``coinbase``, ...): daily candles
  of an explicit list of symbols (``extra.symbols``: ``"BTC/USDT,ETH/USDT"``) or of the top
  ``extra.top`` spot markets of ``extra.quote`` (default ``USDT``) by 24 h quote volume, resolved
  every day.

Define it like any Airflow Connection: in the environment (what the DAG parser sees too, so the
coin list is checked when a run is triggered)::

    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://binance?symbols=BTC/USDT,ETH/USDT'
    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://binance?top=50&quote=USDT'
    AIRFLOW_CONN_CRYPTO_ML_MARKET='crypto-ml-market://csv?path=/data/prices'

or in the UI / ``airflow connections add`` (type "Crypto-ML market"). This module is cheap to
import (no Airflow, no pandas, no network): the DAG files call :func:`parse_time_coin_ids`.

Coin ids: a bundled or CSV coin keeps its slug (``bitcoin``); an exchange market's id is its
symbol in lower case with ``/`` as ``-`` (``BTC/USDT`` ↦ ``btc-usdt``), used in storage, the UI and
run ids (``btc-usdt__2026-11-29``). :func:`coin_id` and :func:`symbol_of` are that one mapping.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from crypto_ml.dates import as_date

#: The Connection id and type of the market setting.
CONN_ID = "crypto_ml_market"
CONN_TYPE = "crypto_ml_market"
#: The environment variable Airflow itself reads for that Connection.
ENV_VAR = "AIRFLOW_CONN_CRYPTO_ML_MARKET"

REPLAY, CSV, EXCHANGE = "replay", "csv", "exchange"
#: Shape of a coin id, checked at trigger time when the universe is not known at parse time.
COIN_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"

#: The extra fields each kind of market reads; any other field of the setting is refused.
_KIND_KEYS = {
    REPLAY: set(),
    CSV: {"path"},
    EXCHANGE: {"symbols", "top", "quote", "api_url", "start", "timeout", "retries", "backoff",
               "rate_limit_ms", "page_limit", "seed"},
}
_EXTRA_KEYS = set().union(*_KIND_KEYS.values())
_ENCODE_FIX = ("URL-encode the extra's value (api_url=http%3A%2F%2F127.0.0.1%3A8000), or give the "
               "Connection in Airflow's JSON form: "
               "'{\"conn_type\": \"crypto_ml_market\", \"host\": \"kraken\", \"extra\": "
               "{\"symbols\": \"BTC/USD\", \"api_url\": \"http://127.0.0.1:8000\"}}'")


class MarketConfigError(ValueError):
    """The market setting is malformed: says which field and what is valid."""


def coin_id(symbol: str) -> str:
    """``"BTC/USDT"`` ↦ ``"btc-usdt"``: the id of an exchange market everywhere in Crypto-ML."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote or ":" in quote:
        raise MarketConfigError(f"{symbol!r} is not a spot market symbol like 'BTC/USDT'")
    return f"{_slug(base)}-{_slug(quote)}"


def symbol_of(coin: str) -> str:
    """``"btc-usdt"`` ↦ ``"BTC/USDT"`` (the inverse of :func:`coin_id` for exchange markets)."""
    base, sep, quote = coin.rpartition("-")
    if not sep or not base or not quote:
        raise MarketConfigError(f"{coin!r} is not an exchange coin id like 'btc-usdt'")
    return f"{base.upper()}/{quote.upper()}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "", text.strip().lower())


@dataclass(frozen=True)
class MarketConfig:
    """The resolved market setting (see the module docstring).

    :param kind: ``replay``, ``csv`` or ``exchange``.
    :param exchange: the ccxt exchange id (``exchange`` only).
    :param symbols: an explicit universe of symbols (``BTC/USDT``); empty with ``top``.
    :param top: the universe is the top N spot markets of ``quote`` by 24 h quote volume.
    :param quote: quote currency of the ``top`` universe.
    :param path: the folder of CSV files (``csv`` only).
    :param api_url: send every REST call of the exchange to this base URL (a mirror, a proxy or
        a local test server) instead of the exchange's own.
    :param start: first day fetched for a coin the project DB does not hold yet (default: the
        exchange's whole history).
    :param timeout: seconds per request; ``retries`` and ``backoff``: retries of a request on
        network errors, rate limits and outages, waiting ``backoff`` × 2**n seconds (or the
        exchange's ``Retry-After``, when longer).
    :param rate_limit_ms: least milliseconds between two requests (default: ccxt's value for
        the exchange, its published limit).
    :param seed: a CSV folder (exchange only) holding the older history of the exchange's coins
        (files named by coin id, ``btc-usd.csv``, or the long form): a coin's days the project DB
        lacks are read from it first, the exchange is asked only for the days after them. The
        deep history of an exchange that serves little (Kraken: its 720 most recent candles).
    :param origin: where the setting came from, for messages.
    """

    kind: str = REPLAY
    exchange: str | None = None
    symbols: tuple[str, ...] = ()
    top: int | None = None
    quote: str = "USDT"
    path: str | None = None
    api_url: str | None = None
    start: dt.date | None = None
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 1.0
    rate_limit_ms: int | None = None
    page_limit: int = 1000
    seed: str | None = None
    origin: str = "default (no crypto_ml_market Connection)"
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_fields(cls, host: str | None, extra: dict | None, *, origin: str,
                    schema: str | None = None) -> MarketConfig:
        """From a Connection's host and extra (what the UI form and the URI both fill).

        A Connection that exists is never the replay by default: an empty host fails, naming the
        field. ``schema`` is the Connection's schema field, which a market never uses: Airflow's
        URI parser fills it (and empties the host) when an extra holds an unencoded URL
        (``...&api_url=http://...``: host ``""``, schema ``"raken"`` for ``kraken``); that
        fails too, saying how to write the setting."""
        if schema:
            raise MarketConfigError(
                f"{origin}: host is {host or ''!r} and schema is {schema!r}; a market has no schema. "
                "This is how Airflow's URI parser reads a URI whose extra holds an unencoded URL "
                f"(two '://' in the URI). {_ENCODE_FIX}"
            )
        if not (host or "").strip():
            raise MarketConfigError(
                f"{origin}: host is empty; name the market there: 'replay', 'csv' or a ccxt exchange "
                "id (binance, kraken, ...). An existing Connection is never read as the replay by default"
            )
        host = host.strip().lower()
        prefix = f"extra__{CONN_TYPE}__"  # the older prefixed form of a form field
        extra = {k.removeprefix(prefix): v for k, v in (extra or {}).items() if v not in (None, "")}
        unknown = set(extra) - _EXTRA_KEYS
        if unknown:
            raise MarketConfigError(
                f"{origin}: unknown extra field(s) {sorted(unknown)}; valid: {sorted(_EXTRA_KEYS)}"
            )

        def num(key, kind, default):
            raw = extra.get(key)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                raise MarketConfigError(f"{origin}: {key}={raw!r} is not a number") from None
            if value < 0 or (key in ("top", "page_limit") and value < 1):
                raise MarketConfigError(f"{origin}: {key}={raw!r} must be positive")
            return value

        try:
            start = as_date(extra.get("start"), what="start")
        except ValueError:
            raise MarketConfigError(f"{origin}: start={extra['start']!r} is not a date (YYYY-MM-DD)") from None
        common = dict(
            timeout=num("timeout", float, 10.0), retries=num("retries", int, 4),
            backoff=num("backoff", float, 1.0), rate_limit_ms=num("rate_limit_ms", int, None),
            page_limit=num("page_limit", int, 1000), start=start, origin=origin, extra=extra,
        )
        kind = host if host in (REPLAY, CSV) else EXCHANGE
        stray = set(extra) - _KIND_KEYS[kind]
        if stray:
            raise MarketConfigError(
                f"{origin}: extra field(s) {sorted(stray)} mean nothing to a {kind} market"
                f" (it reads {sorted(_KIND_KEYS[kind]) or 'no extra field'})")
        if host == REPLAY:
            return cls(kind=REPLAY, **common)
        if host == CSV:
            path = extra.get("path")
            if not path:
                raise MarketConfigError(f"{origin}: a csv market needs extra.path (the folder of CSV files)")
            return cls(kind=CSV, path=str(path), **common)
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
        top = num("top", int, None)
        if bool(symbols) == bool(top):
            raise MarketConfigError(
                f"{origin}: an exchange market needs either extra.symbols (e.g. 'BTC/USDT,ETH/USDT') "
                "or extra.top (e.g. 50), not both and not neither"
            )
        quote = str(extra.get("quote") or "USDT").upper()
        return cls(kind=EXCHANGE, exchange=host, symbols=symbols, top=top,
                   quote=quote, api_url=extra.get("api_url") or None,
                   seed=str(extra["seed"]) if extra.get("seed") else None, **common)

    @classmethod
    def from_env_value(cls, value: str, *, origin: str = ENV_VAR) -> MarketConfig:
        """From the text of ``AIRFLOW_CONN_CRYPTO_ML_MARKET``: a URI or Airflow's JSON form."""
        value = value.strip()
        if value.startswith("{"):
            try:
                data = json.loads(value)
            except ValueError as exc:
                raise MarketConfigError(f"{origin} is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise MarketConfigError(f"{origin} is JSON but not an object (conn_type, host, extra)")
            extra = data.get("extra") or {}
            if isinstance(extra, str):
                try:
                    extra = json.loads(extra or "{}")
                except ValueError as exc:
                    raise MarketConfigError(f"{origin}: extra is not valid JSON: {exc}") from None
            if not isinstance(extra, dict):
                raise MarketConfigError(f"{origin}: extra must be an object, not {type(extra).__name__}")
            _check_type(data.get("conn_type"), origin)
            stray = sorted(k for k in ("login", "password", "port") if data.get(k) not in (None, ""))
            unknown = sorted(set(data) - {"conn_type", "host", "schema", "login", "password", "port",
                                           "extra", "description"})
            if stray or unknown:
                raise MarketConfigError(
                    f"{origin}: field(s) {stray + unknown} mean nothing to a market; it reads "
                    "conn_type, host and extra")
            return cls.from_fields(data.get("host"), extra, origin=origin, schema=data.get("schema"))
        if "://" not in value:
            raise MarketConfigError(
                f"{origin}: {value[:60]!r} is neither a URI (crypto-ml-market://binance?symbols=...) "
                "nor Airflow's JSON form ({\"conn_type\": \"crypto_ml_market\", ...})")
        # Split by hand at the first '://' and the first '?': an extra may hold an unencoded URL
        # (api_url=http://...), which is read here as written (Airflow's own parser empties the
        # host then; see MarketConfig.from_fields).
        scheme, _, rest = value.partition("://")
        _check_type(scheme.replace("-", "_"), origin)
        netloc_path, _, query = rest.partition("?")
        netloc, _, path = netloc_path.partition("/")
        if path:
            raise MarketConfigError(f"{origin}: the URI has a path '/{path}'; a market takes none "
                                    "(crypto-ml-market://<market>?<extra fields>)")
        if "@" in netloc or ":" in netloc:
            raise MarketConfigError(f"{origin}: the URI's host {netloc!r} holds a login or port; "
                                    "a market takes neither (crypto-ml-market://<market>?...)")
        extra: dict = {}
        for key, val in parse_qsl(query, keep_blank_values=True):
            if key == "__extra__":
                try:
                    extra.update(json.loads(val))
                except (ValueError, TypeError) as exc:
                    raise MarketConfigError(f"{origin}: __extra__ is not a JSON object: {exc}") from None
            else:
                extra[key] = val
        return cls.from_fields(unquote(netloc), extra, origin=origin)

    # -- what it means ------------------------------------------------------------------------
    @property
    def source_name(self) -> str:
        """The label stored with every price row (``replay:bundled``, ``csv:/path``, ``ccxt:binance``)."""
        if self.kind == EXCHANGE:
            return f"ccxt:{self.exchange}"
        if self.kind == CSV:
            return f"csv:{self.path}"
        return "replay:bundled"

    def describe(self) -> str:
        if self.kind == EXCHANGE:
            shown = ", ".join(self.symbols[:5]) + (f", ... ({len(self.symbols)} symbols)"
                                                      if len(self.symbols) > 5 else "")
            what = shown if self.symbols else f"top {self.top} {self.quote} markets by 24 h quote volume"
            seeded = f", seeded from the CSV files in {self.seed}" if self.seed else ""
            return f"exchange {self.exchange} ({what}) via ccxt{seeded}"
        if self.kind == CSV:
            return f"CSV files in {self.path}"
        return "replay of the bundled 2013-2017 history"

    def market_day(self, day, *, now: dt.datetime | None = None) -> dt.date:
        """The market's day for a run whose (logical) day is ``day``: the replayed history day for
        the replay; for an exchange, ``day`` itself, or the last day whose daily candle has closed
        when ``day``'s is still forming (a run never predicts from a candle after its own day)."""
        day = as_date(day)
        if self.kind == REPLAY:
            from crypto_ml.catalog import replay_day

            return replay_day(day)
        if self.kind == EXCHANGE:
            now = now or dt.datetime.now(dt.UTC)
            return min(day, last_closed_day(now))
        return day

    @property
    def is_exchange(self) -> bool:
        """Read from an exchange through ccxt."""
        return self.kind == EXCHANGE

    def parse_time_coin_ids(self) -> list[str] | None:
        """The coins a pipeline run accepts, if fixed by the setting itself (the replay's, an
        explicit symbol list's); ``None`` for a universe resolved each day (top N, the files of a
        CSV folder): runs are then checked against it when they start."""
        if self.kind == REPLAY:
            from crypto_ml.catalog import replay_coin_ids

            return replay_coin_ids()
        if self.is_exchange and self.symbols:
            return sorted(coin_id(s) for s in self.symbols)
        return None

    def with_(self, **changes) -> MarketConfig:
        return replace(self, **changes)


def _check_type(conn_type: str | None, origin: str) -> None:
    if conn_type and conn_type != CONN_TYPE:
        raise MarketConfigError(f"{origin}: connection type {conn_type!r}, expected {CONN_TYPE!r}")


def last_closed_day(now: dt.datetime) -> dt.date:
    """The newest UTC day whose daily candle has closed at ``now``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def env_var(conn_id: str = CONN_ID) -> str:
    """The environment variable Airflow reads for Connection ``conn_id``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def env_market(conn_id: str = CONN_ID) -> MarketConfig:
    """The market as the environment defines it (``AIRFLOW_CONN_CRYPTO_ML_MARKET``), else the
    replay default. No Airflow, no database: what the DAG parser, the ``crypto-ml`` CLI and (when
    the variable is set) the tasks' hook read, with one parser: :meth:`MarketConfig.from_env_value`."""
    value = os.environ.get(env_var(conn_id))
    if value is None or not value.strip():
        return MarketConfig()
    return MarketConfig.from_env_value(value, origin=env_var(conn_id))


def parse_time_coin_ids() -> list[str] | None:
    """The coin ids ``crypto_ml_coin`` accepts at trigger time (``None``: any id of the right
    shape; the run checks it against the day's universe). Never raises: a broken setting is
    reported by the tasks that use it (the first one fails naming the field), and logged here,
    so the DAG stays visible with its failing runs instead of vanishing as an import error."""
    try:
        return env_market().parse_time_coin_ids()
    except (MarketConfigError, OSError) as exc:
        import logging

        logging.getLogger(__name__).error("the market setting cannot be read (every run will fail "
                                          "on it): %s", exc)
        return None


def slugify(name: str) -> str:
    """``"Bitcoin Cash"`` → ``"bitcoin-cash"``: the id of a bundled or CSV coin."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
