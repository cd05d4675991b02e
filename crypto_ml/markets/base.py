"""The market setting, read one way, and the base class of the market kinds.

:meth:`Market.from_env_value` reads the text of ``AIRFLOW_CONN_CRYPTO_ML_MARKET`` (a URI, an
unencoded URL in an extra included, or Airflow's JSON form) and :meth:`Market.from_fields` a
Connection's host and extra; both give an instance of the kind's class, picked by
:mod:`crypto_ml.markets.registry`. Each kind owns its Connection fields (``keys``), its data
source (:meth:`Market.source`), the mapping of a run's day to the market's day
(:meth:`Market.market_day`) and the coin ids known at parse time (:meth:`Market.parse_time_coin_ids`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

from crypto_ml.markets.ids import CONN_TYPE, ENV_VAR, REPLAY, MarketConfigError, env_var
from crypto_ml.utils.dates import as_date

#: Reads the market of a Connection id (the members of several markets).
Resolver = Callable[[str], "Market"]

_PREFIX = f"extra__{CONN_TYPE}__"  # the older prefixed form of a form field
_ENCODE_FIX = (
    "URL-encode the extra's value (api_url=http%3A%2F%2F127.0.0.1%3A8000), or give the "
    "Connection in Airflow's JSON form: "
    '\'{"conn_type": "crypto_ml_market", "host": "kraken", "extra": '
    '{"symbols": "BTC/USD", "api_url": "http://127.0.0.1:8000"}}\''
)


@dataclass(frozen=True)
class Market:
    """A resolved market setting; one subclass per kind (see :mod:`crypto_ml.markets.registry`).

    ``Market(kind=..., ...)`` (alias ``MarketConfig``) builds the kind's class; ``Market()`` is
    the replay, the default when no Connection exists.

    :param kind: the data path: ``replay``, ``csv`` or ``exchange`` (a seeded market reads the
        exchange every day: its kind is ``exchange``, its :attr:`name` ``seeded``).
    :param exchange: the ccxt exchange id (exchange kinds).
    :param symbols: an explicit universe of symbols (``BTC/USDT``); empty with ``top``.
    :param top: the universe is the top N spot markets of ``quote`` by 24 h quote volume.
    :param quote: quote currency of the ``top`` universe.
    :param path: the folder of CSV files (``csv``).
    :param api_url: send every REST call of the exchange to this base URL (a mirror, a proxy or
        a local test server) instead of the exchange's own.
    :param start: first day fetched for a coin the project DB does not hold yet (default: the
        exchange's whole history).
    :param timeout: seconds per request; ``retries`` and ``backoff``: retries of a request on
        network errors, rate limits and outages, waiting ``backoff`` × 2**n seconds (or the
        exchange's ``Retry-After``, when longer).
    :param rate_limit_ms: least milliseconds between two requests (default: ccxt's value for
        the exchange, its published limit).
    :param page_limit: candles asked per request.
    :param seed: a CSV folder holding the older history of the exchange's coins (``seeded``).
    :param prefix: set on a member of several markets (:class:`~crypto_ml.markets.MultiMarket`):
        its coin ids start with ``<prefix>.`` (``kraken.btc-usd``), so two markets listing the
        same pair stay two coins.
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
    prefix: str | None = None
    origin: str = field(default="default (no crypto_ml_market Connection)", compare=False)
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    #: The registry's name of the kind.
    name: ClassVar[str] = "market"
    #: The extra fields (Connection fields) the kind reads; any other is refused.
    keys: ClassVar[frozenset[str]] = frozenset()
    #: The kind's fields in the UI's connection form (``provider_info``'s ``conn-fields``).
    conn_fields: ClassVar[dict[str, dict]] = {}

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls is Market:  # Market(kind=...): the kind's class
            from crypto_ml.markets.registry import class_for

            cls = class_for(kwargs.get("kind", REPLAY), kwargs)
        return object.__new__(cls)

    # -- what a kind says about itself (overridden) -------------------------------------------
    @classmethod
    def matches(cls, host: str, extra: dict) -> bool:
        """Whether a Connection with this host and extra is this kind."""
        return host == cls.name

    @classmethod
    def from_extra(cls, host: str, extra: dict, *, origin: str) -> dict[str, Any]:
        """The kind's field values from the Connection's host and (checked) extra."""
        return {}

    @property
    def source_name(self) -> str:
        """The label stored with every price row."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def market_day(self, day, *, now: dt.datetime | None = None) -> dt.date:
        """The market's day for a run whose (logical) day is ``day``."""
        return as_date(day)

    def parse_time_coin_ids(self) -> list[str] | None:
        """The coins a run accepts if the setting itself fixes them; ``None`` for a universe
        resolved each day (checked when the run starts)."""
        return None

    def source(self, day: dt.date, *, stored=None, coins=None, now=None):
        """The :class:`~crypto_ml.sources.Source` of this market as of ``day``; ``stored``
        (``{coin: (first, last)}`` in the project DB) lets a source ask only for what is lacking."""
        raise NotImplementedError

    @property
    def is_exchange(self) -> bool:
        """Read from an exchange through ccxt."""
        return False

    def with_(self, **changes) -> Market:
        return replace(self, **changes)

    def market_of(self, coin: str) -> Market:
        """The market ``coin`` is read from: this one (a multi market: the member it names)."""
        return self

    def resolved(self, resolve: Resolver) -> Market:
        """This market with the Connections it names read (``resolve(conn_id)`` gives each one's
        market); only :class:`~crypto_ml.markets.MultiMarket` names any."""
        return self

    # -- reading the setting ------------------------------------------------------------------
    @classmethod
    def from_fields(
        cls,
        host: str | None,
        extra: dict | None,
        *,
        origin: str,
        schema: str | None = None,
        resolve: Resolver | None = None,
    ) -> Market:
        """From a Connection's host and extra (what the UI form and the URI both fill).

        A Connection that exists is never the replay by default: an empty host fails, naming the
        field. ``schema`` is the Connection's schema field, which a market never uses: Airflow's
        URI parser fills it (and empties the host) when an extra holds an unencoded URL
        (``...&api_url=http://...``: host ``""``, schema ``"raken"`` for ``kraken``); that
        fails too, saying how to write the setting. ``resolve`` reads the Connections a setting
        names (the members of several markets; default: the environment's, as the DAG parser and
        the CLI see them; a task's hook passes its own lookup)."""
        from crypto_ml.markets.registry import KINDS, pick

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
        extra = {k.removeprefix(_PREFIX): v for k, v in (extra or {}).items() if v not in (None, "")}
        known = frozenset().union(*(k.keys for k in KINDS))
        unknown = set(extra) - known
        if unknown:
            raise MarketConfigError(
                f"{origin}: unknown extra field(s) {sorted(unknown)}; valid: {sorted(known)}"
            )
        klass = pick(host, extra)
        stray = set(extra) - klass.keys
        if stray:
            raise MarketConfigError(
                f"{origin}: extra field(s) {sorted(stray)} mean nothing to a {klass.name} market"
                f" (it reads {sorted(klass.keys) or 'no extra field'})"
            )
        market = klass(**klass.from_extra(host, extra, origin=origin), origin=origin, extra=extra)
        return market.resolved(resolve or env_member)

    @classmethod
    def from_env_value(cls, value: str, *, origin: str = ENV_VAR, resolve: Resolver | None = None) -> Market:
        """From the text of ``AIRFLOW_CONN_CRYPTO_ML_MARKET``: a URI or Airflow's JSON form."""
        value = value.strip()
        if value.startswith("{"):
            return cls._from_json(value, origin, resolve)
        if "://" not in value:
            raise MarketConfigError(
                f"{origin}: {value[:60]!r} is neither a URI (crypto-ml-market://binance?symbols=...) "
                'nor Airflow\'s JSON form ({"conn_type": "crypto_ml_market", ...})'
            )
        # Split by hand at the first '://' and the first '?': an extra may hold an unencoded URL
        # (api_url=http://...), which is read here as written (Airflow's own parser empties the
        # host then; see from_fields).
        scheme, _, rest = value.partition("://")
        _check_type(scheme.replace("-", "_"), origin)
        netloc_path, _, query = rest.partition("?")
        netloc, _, path = netloc_path.partition("/")
        if path:
            raise MarketConfigError(
                f"{origin}: the URI has a path '/{path}'; a market takes none "
                "(crypto-ml-market://<market>?<extra fields>)"
            )
        if "@" in netloc or ":" in netloc:
            raise MarketConfigError(
                f"{origin}: the URI's host {netloc!r} holds a login or port; "
                "a market takes neither (crypto-ml-market://<market>?...)"
            )
        extra: dict = {}
        for key, val in parse_qsl(query, keep_blank_values=True):
            if key == "__extra__":
                try:
                    extra.update(json.loads(val))
                except (ValueError, TypeError) as exc:
                    raise MarketConfigError(f"{origin}: __extra__ is not a JSON object: {exc}") from None
            elif key in extra:
                raise MarketConfigError(f"{origin}: extra field {key!r} is given twice")
            else:
                extra[key] = val
        return cls.from_fields(unquote(netloc), extra, origin=origin, resolve=resolve)

    @classmethod
    def _from_json(cls, value: str, origin: str, resolve: Resolver | None = None) -> Market:
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
        unknown = sorted(
            set(data) - {"conn_type", "host", "schema", "login", "password", "port", "extra", "description"}
        )
        if stray or unknown:
            raise MarketConfigError(
                f"{origin}: field(s) {stray + unknown} mean nothing to a market; it reads "
                "conn_type, host and extra"
            )
        return cls.from_fields(
            data.get("host"), extra, origin=origin, schema=data.get("schema"), resolve=resolve
        )


def env_member(conn_id: str) -> Market:
    """The market of Connection ``conn_id`` as the environment defines it (``AIRFLOW_CONN_<ID>``):
    how the DAG parser and the CLI read the members of several markets. Unset fails, naming it."""
    var = env_var(conn_id)
    value = os.environ.get(var, "")
    if not value.strip():
        raise MarketConfigError(
            f"{var} is not set: Connection {conn_id!r} is named as a market of the setting, and the "
            "DAG parser and the crypto-ml CLI read markets from the environment only; define it there "
            "in every Airflow component"
        )
    return Market.from_env_value(value, origin=var, resolve=refuse_nested)


def refuse_nested(conn_id: str) -> Market:
    """The resolver of a multi market's members: a member naming markets in turn is refused."""
    raise MarketConfigError(
        f"a market of a multi market names markets in turn ({conn_id!r}); "
        "the markets of a multi market are exchanges"
    )


def _check_type(conn_type: str | None, origin: str) -> None:
    if conn_type and conn_type != CONN_TYPE:
        raise MarketConfigError(f"{origin}: connection type {conn_type!r}, expected {CONN_TYPE!r}")


def number(extra: dict, key: str, kind: type, default, *, origin: str, least: float = 0):
    """``extra[key]`` as ``kind`` (``default`` when absent), at least ``least``; else fails."""
    raw = extra.get(key)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise MarketConfigError(f"{origin}: {key}={raw!r} is not a number") from None
    if value < least:
        raise MarketConfigError(
            f"{origin}: {key}={raw!r} must be " + ("positive" if least else "zero or more")
        )
    return value


def conn_field(label: str, kind: str, description: str, **schema) -> dict:
    """One field of the UI's connection form."""
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], **schema}}
