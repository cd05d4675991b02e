"""Brokers behind one interface: a paper ledger in the project DB, and an HTTP endpoint.

Every order carries an idempotency key; placing the same key twice never places a second order
(the paper broker keeps the first result, the HTTP endpoint is expected to do the same with the
``Idempotency-Key`` header). The HTTP broker is dry-run unless explicitly configured for live
trading (``dry_run=False`` *and* ``CRYPTO_ML_TRADING_LIVE=1``).
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from crypto_ml.settings import env_bool, env_str, env_url
from crypto_ml.storage import ledger
from crypto_ml.storage.db import session_scope
from crypto_ml.trading.risk import Account, RiskLimits, check_order, paper_account, trade_request_account
from crypto_ml.utils.dates import as_date
from crypto_ml.utils.http import retrying_session

log = logging.getLogger(__name__)

#: Every trading setting has the ``CRYPTO_ML_TRADING_`` prefix (``CRYPTO_ML_BROKER_URL`` is the
#: prediction engine's Celery broker, read only by :mod:`crypto_ml.settings.engine`).
BROKER_ENV = "CRYPTO_ML_TRADING_BROKER"
BROKER_URL_ENV = "CRYPTO_ML_TRADING_URL"
BROKER_DRY_RUN_ENV = "CRYPTO_ML_TRADING_DRY_RUN"
TOKEN_ENV = "CRYPTO_ML_TRADING_TOKEN"
LIVE_ENV = "CRYPTO_ML_TRADING_LIVE"
#: Names the trading settings had before the prefix, refused with the new name (never silently
#: ignored, never read as something else).
RENAMED_ENV = {
    "CRYPTO_ML_BROKER": BROKER_ENV,
    "CRYPTO_ML_BROKER_DRY_RUN": BROKER_DRY_RUN_ENV,
    "CRYPTO_ML_BROKER_TOKEN": TOKEN_ENV,
    "CRYPTO_ML_LIVE_TRADING": LIVE_ENV,
}

Status = Literal["filled", "accepted", "dry_run", "rejected"]
_EPS = 1e-9


class BrokerError(RuntimeError):
    """The broker could not be reached or answered with an error after all retries."""


class LiveTradingNotEnabled(BrokerError):
    """A live (non dry-run) order without ``CRYPTO_ML_TRADING_LIVE=1``."""


class IdempotencyConflict(ValueError):
    """An idempotency key reused for a different order."""


@dataclass(frozen=True)
class OrderRequest:
    """One order: ``quantity`` units of ``coin`` at (limit/reference) ``price``, decided on ``as_of``."""

    idempotency_key: str
    coin: str
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    as_of: dt.date | str | None = None

    def __post_init__(self) -> None:
        if not self.idempotency_key or len(self.idempotency_key) > 128:
            raise ValueError(
                f"OrderRequest.idempotency_key must be 1..128 chars, got {self.idempotency_key!r}"
            )
        if not self.coin:
            raise ValueError("OrderRequest.coin must be non-empty")
        if self.side not in ("buy", "sell"):
            raise ValueError(f"OrderRequest.side must be 'buy' or 'sell', got {self.side!r}")
        for name in ("quantity", "price"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"OrderRequest.{name} must be a finite number > 0, got {value!r}")
        object.__setattr__(self, "as_of", as_date(self.as_of, what="OrderRequest.as_of"))

    def to_json(self) -> dict[str, Any]:
        """The JSON body of the order."""
        return {
            "idempotency_key": self.idempotency_key,
            "coin": self.coin,
            "side": self.side,
            "quantity": float(self.quantity),
            "price": float(self.price),
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }


@dataclass(frozen=True)
class OrderResult:
    """What the broker did with an order.

    ``duplicate`` is true when the key was seen before and this is the stored result of the first
    placement (nothing new happened). ``reason`` explains a rejection; ``raw`` is the broker's payload.
    """

    status: Status
    order_id: str | None
    filled_qty: float = 0.0
    fill_price: float | None = None
    duplicate: bool = False
    raw: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


class Broker(abc.ABC):
    """Places orders and reports positions."""

    name: str = "broker"

    @abc.abstractmethod
    def place_order(self, order: OrderRequest) -> OrderResult:
        """Place ``order`` at most once per idempotency key."""

    @abc.abstractmethod
    def position(self, coin: str) -> float:
        """Current quantity held of ``coin`` (negative = short, 0 when none)."""

    @abc.abstractmethod
    def total_notional(self) -> float:
        """Gross notional of all positions at cost (sum of ``|quantity| * avg_price``); for
        reports only: decisions use :meth:`account` (market value, realised losses in the cash)."""

    @abc.abstractmethod
    def account(
        self, capital: float, *, marks: Mapping[str, float], as_of: Any = None, url: str | None = None
    ) -> Account:
        """The book (:class:`~crypto_ml.trading.risk.Account`) of a ``capital`` that this broker
        traded: cash after every fill, positions, each coin marked at ``marks`` or its latest
        stored close (see :func:`crypto_ml.trading.risk.stored_marks`). ``url``: the project
        database of the recorded trade requests (the HTTP broker's cash; the paper broker keeps
        its own ledger in its database)."""


# --------------------------------------------------------------------------------------------- paper


class PaperBroker(Broker):
    """Simulated broker: a ledger of orders, fills and positions in the project database.

    Orders fill immediately and completely at their ``price``. The database must be migrated
    (:func:`crypto_ml.storage.migrate`).

    Parameters
    ----------
    url
        Project database URL (see :func:`crypto_ml.storage.database_url`).
    allow_short
        Whether selling more than held is allowed (else such an order is rejected).
    limits
        The caps every fill is checked against, in the same transaction as the fill (default: the
        default :class:`~crypto_ml.trading.rules.TradingRules`' limits, capital 20,000 USD): an
        order that adds exposure is rejected when it would spend more than the cash (capital plus
        sales minus purchases) or take the coin or the total past its cap at market value
        (:func:`crypto_ml.trading.risk.check_order`). So even decisions made concurrently on the
        same cash can never take the ledger's cash, or its equity, below zero.
    marks
        Where the check marks the coins not being traded: None (default) their latest stored
        close on or before the order's day (:func:`~crypto_ml.trading.risk.stored_marks`), else a
        callable returning ``{coin: price}`` (the backtest's closes of the day).
    """

    name = "paper"

    def __init__(
        self,
        url: str | None = None,
        *,
        allow_short: bool = False,
        limits: RiskLimits | None = None,
        marks: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.url = url
        self.allow_short = allow_short
        self.limits = limits or RiskLimits()
        self.marks = marks

    def place_order(self, order: OrderRequest) -> OrderResult:
        """Record and fill ``order`` in one transaction, or return the stored result of its key.

        The order row is inserted first (``ON CONFLICT DO NOTHING``): only the transaction that
        inserted it fills it and moves the position, so a concurrent or retried call with the same key
        waits for the first one and then returns its result with ``duplicate=True``.

        Raises
        ------
        IdempotencyConflict
            When the key is already used by an order with another coin, side, quantity or price.
        """
        key = order.idempotency_key
        with session_scope(self.url) as session:
            if not ledger.claim_paper_order(
                session,
                idempotency_key=key,
                coin=order.coin,
                side=order.side,
                quantity=order.quantity,
                price=order.price,
                as_of=order.as_of,
            ):
                return self._stored(ledger.paper_order(session, key), order)

            held, avg = ledger.lock_paper_position(session, order.coin)
            signed = order.quantity if order.side == "buy" else -order.quantity
            if (
                order.side == "sell"
                and not self.allow_short
                and order.quantity > held + _EPS * max(1.0, abs(held))
            ):
                reason = (
                    f"cannot sell {order.quantity:g} {order.coin}: only {max(held, 0.0):g} held "
                    "(shorting not allowed)"
                )
                ledger.reject_paper_order(session, key, reason)
                return OrderResult("rejected", key, raw=self._raw(order, "rejected", reason), reason=reason)

            _lock_book(session)
            book = self._book(session, {order.coin: order.price}, order.as_of)
            reason = check_order(book, order.coin, order.side, order.quantity, order.price, self.limits)
            if reason is not None:
                ledger.reject_paper_order(session, key, reason)
                return OrderResult("rejected", key, raw=self._raw(order, "rejected", reason), reason=reason)

            new_qty, new_avg = _apply_fill(held, avg, signed, order.price)
            ledger.fill_paper_order(
                session,
                idempotency_key=key,
                coin=order.coin,
                quantity=order.quantity,
                price=order.price,
                position=new_qty,
                avg_price=new_avg,
            )
            raw = self._raw(order, "filled", None, filled_qty=order.quantity, fill_price=order.price)
            raw["position"] = new_qty
            return OrderResult("filled", key, float(order.quantity), float(order.price), raw=raw)

    def _stored(self, stored: dict[str, Any], order: OrderRequest) -> OrderResult:
        if (
            stored["coin"] != order.coin
            or stored["side"] != order.side
            or not math.isclose(stored["quantity"], order.quantity, rel_tol=1e-9)
            or not math.isclose(stored["price"], order.price, rel_tol=1e-9)
        ):
            raise IdempotencyConflict(
                f"idempotency key {order.idempotency_key} already used for {stored['side']} "
                f"{stored['quantity']:g} {stored['coin']} @ {stored['price']:g}, "
                f"not {order.side} {order.quantity:g} {order.coin} @ {order.price:g}"
            )
        filled_qty, fill_price = stored["filled_qty"], stored["fill_price"]
        raw = self._raw(
            order, stored["status"], stored["reason"], filled_qty=filled_qty, fill_price=fill_price
        )
        raw["duplicate"] = True
        return OrderResult(
            stored["status"],
            order.idempotency_key,
            filled_qty,
            fill_price,
            duplicate=True,
            raw=raw,
            reason=stored["reason"] or "",
        )

    @staticmethod
    def _raw(order: OrderRequest, status: str, reason: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "broker": "paper",
            "order_id": order.idempotency_key,
            "status": status,
            "reason": reason,
            **order.to_json(),
            **extra,
        }

    def position(self, coin: str) -> float:
        return ledger.paper_position(coin, url=self.url)

    def positions(self) -> dict[str, float]:
        """``{coin: quantity}`` of every non-zero position."""
        return ledger.paper_positions(url=self.url)

    def total_notional(self) -> float:
        return ledger.paper_total_notional(url=self.url)

    def _book(self, session: Any, marks: Mapping[str, float], as_of: Any) -> Account:
        if self.marks is not None:  # the given marks (the day's closes) over the order's price
            marks = {**marks, **self.marks()}
        return paper_account(session, self.limits.capital, marks=marks, as_of=as_of, url=self.url)

    def account(
        self,
        capital: float | None = None,
        *,
        marks: Mapping[str, float],
        as_of: Any = None,
        url: str | None = None,
    ) -> Account:
        """The ledger's book (capital default: the broker's ``limits.capital``)."""
        with session_scope(self.url) as session:
            book = self._book(session, marks, as_of)
        if capital is not None and capital != book.capital:
            book = Account(
                capital, book.cash - book.capital + capital, book.positions, book.marks, notes=book.notes
            )
        return book


_BOOK_LOCK_KEY = 0x63726D6C626F6F6B  # "crmlbook"


def _lock_book(session: Any) -> None:
    """Serialise fills across coins (the cash is shared): a PostgreSQL transaction-scoped advisory
    lock; on SQLite the order insert already holds the database's write lock."""
    if session.connection().dialect.name == "postgresql":
        from sqlalchemy import text

        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _BOOK_LOCK_KEY - (1 << 63)})


def _apply_fill(qty: float, avg: float, signed: float, price: float) -> tuple[float, float]:
    """New (quantity, average entry price) after filling ``signed`` units at ``price``."""
    new = qty + signed
    if abs(new) <= _EPS * max(1.0, abs(qty), abs(signed)):
        return 0.0, 0.0
    if qty == 0 or (qty > 0) == (signed > 0):  # opening or growing
        return new, (abs(qty) * avg + abs(signed) * price) / abs(new)
    if (new > 0) != (qty > 0):  # flipped sides: the remainder was opened at this price
        return new, price
    return new, avg  # reducing keeps the entry price


# ---------------------------------------------------------------------------------------------- http


class HTTPBroker(Broker):
    """An order endpoint over HTTP: ``POST <endpoint>`` with an ``Idempotency-Key`` header.

    Expected server behaviour (like real exchanges): an order is stored by its key, and a repeated key
    returns the stored order instead of placing a new one; so retrying a POST is safe and is done by
    urllib3 on connection errors, timeouts and 429/5xx (honouring ``Retry-After``).

    Responses: 2xx JSON ``{order_id, status ("filled"|"accepted"), filled_qty, fill_price,
    duplicate?}``; 4xx other than 429 means rejected (message from ``error``/``message``/``detail``).
    ``GET <endpoint>/positions`` returns ``{coin: quantity}`` or ``{coin: {quantity, avg_price}}``.

    Parameters
    ----------
    endpoint
        Order URL.
    token
        Bearer token; default ``$CRYPTO_ML_TRADING_TOKEN``. Never logged.
    dry_run
        Default True: nothing is ever sent (not even position requests, which then report 0); orders
        return status ``"dry_run"`` with the body that would have been sent. ``False`` additionally
        needs ``CRYPTO_ML_TRADING_LIVE=1`` in the environment.
    timeout, retries, backoff
        Per-attempt timeout in seconds, retries after the first attempt, urllib3 backoff factor.
    ledger_url
        The project database whose recorded trade requests :meth:`account` reads the cash from.
    """

    name = "http"

    def __init__(
        self,
        endpoint: str,
        *,
        token: str | None = None,
        dry_run: bool = True,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
        ledger_url: str | None = None,
    ) -> None:
        if not endpoint:
            raise ValueError("HTTPBroker needs an endpoint URL")
        self.endpoint = endpoint.rstrip("/")
        self._token = token if token is not None else env_str(TOKEN_ENV)
        self.dry_run = dry_run
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.ledger_url = ledger_url
        if not dry_run:
            self._check_live()
        self._session: requests.Session | None = None

    def __repr__(self) -> str:  # no token
        return f"HTTPBroker({self.endpoint!r}, dry_run={self.dry_run})"

    @staticmethod
    def _check_live() -> None:
        if env_str(LIVE_ENV) != "1":
            raise LiveTradingNotEnabled(f"live trading needs {LIVE_ENV}=1 and dry_run=False")

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = retrying_session(
                retries=self.retries, backoff=self.backoff, timeout=self.timeout, methods=("POST", "GET")
            )
        return self._session

    def _headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def place_order(self, order: OrderRequest) -> OrderResult:
        body = order.to_json()
        if self.dry_run:
            log.info("dry run: would POST %s %s %g %s", self.endpoint, order.side, order.quantity, order.coin)
            return OrderResult(
                "dry_run", None, raw={"dry_run": True, "endpoint": self.endpoint, "body": body}
            )
        self._check_live()
        try:
            resp = self.session.post(
                self.endpoint, json=body, headers=self._headers(order.idempotency_key), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise BrokerError(
                f"POST {self.endpoint} (key {order.idempotency_key}) failed after {self.retries} retries: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        payload = _json(resp)
        if resp.status_code == 429 or resp.status_code >= 500:
            raise BrokerError(
                f"POST {self.endpoint} (key {order.idempotency_key}) still failing after {self.retries} "
                f"retries: HTTP {resp.status_code} {_message(resp, payload)}"
            )
        if resp.status_code >= 400:
            reason = f"HTTP {resp.status_code}: {_message(resp, payload)}"
            return OrderResult(
                "rejected",
                payload.get("order_id"),
                raw={"http_status": resp.status_code, **payload},
                reason=reason,
            )
        status = payload.get("status", "accepted")
        if status not in ("filled", "accepted", "rejected"):
            status = "accepted"
        duplicate = (
            bool(payload.get("duplicate")) or resp.headers.get("Idempotent-Replayed", "").lower() == "true"
        )
        fill_price = payload.get("fill_price")
        return OrderResult(
            status,
            None if payload.get("order_id") is None else str(payload["order_id"]),
            float(payload.get("filled_qty") or 0.0),
            None if fill_price is None else float(fill_price),
            duplicate=duplicate,
            raw=payload,
            reason=str(payload.get("reason") or ""),
        )

    def _positions_raw(self) -> dict[str, Any]:
        if self.dry_run:
            return {}
        try:
            resp = self.session.get(
                f"{self.endpoint}/positions", headers=self._headers(), timeout=self.timeout
            )
            resp.raise_for_status()
        except requests.RequestException as exc:
            raise BrokerError(f"GET {self.endpoint}/positions failed: {type(exc).__name__}: {exc}") from exc
        return _json(resp)

    def position(self, coin: str) -> float:
        value = self._positions_raw().get(coin, 0.0)
        return float(value.get("quantity", 0.0) if isinstance(value, dict) else value)

    def total_notional(self) -> float:
        total = 0.0
        for coin, value in self._positions_raw().items():
            if not isinstance(value, dict) or value.get("avg_price") is None:
                raise BrokerError(
                    f"{self.endpoint}/positions gave no avg_price for {coin!r}; total_notional needs "
                    "{coin: {quantity, avg_price}}"
                )
            total += abs(float(value["quantity"])) * float(value["avg_price"])
        return total

    def account(
        self, capital: float, *, marks: Mapping[str, float], as_of: Any = None, url: str | None = None
    ) -> Account:
        """The book from the project's recorded trade requests of this broker
        (:func:`crypto_ml.trading.risk.trade_request_account`): live, the cash after every fill the
        endpoint reported and the endpoint's positions; dry run, every order that would have been
        sent counted as filled at its price."""
        positions = None
        if not self.dry_run:
            positions = {}
            for coin, value in self._positions_raw().items():
                positions[coin] = float(value.get("quantity", 0.0) if isinstance(value, dict) else value)
        url = url or self.ledger_url
        requests_ = ledger.get_trade_requests(url=url)
        return trade_request_account(
            requests_,
            capital,
            broker=self.name,
            dry_run=self.dry_run,
            marks=marks,
            positions=positions,
            as_of=as_of,
            url=url,
        )


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        payload = resp.json()
    except ValueError:
        return {"text": resp.text[:1000]}
    return payload if isinstance(payload, dict) else {"data": payload}


def _message(resp: requests.Response, payload: dict[str, Any]) -> str:
    for key in ("error", "message", "detail", "text"):
        if payload.get(key):
            return str(payload[key])[:500]
    return resp.reason or ""


# -------------------------------------------------------------------------------------------- config


def broker_from_config(name: str | None = None, *, url: str | None = None) -> Broker:
    """Build the configured broker.

    ``name`` (else ``$CRYPTO_ML_TRADING_BROKER``, else ``"paper"``): ``"paper"`` → :class:`PaperBroker`
    on the project DB ``url``; ``"http"`` → :class:`HTTPBroker` on ``$CRYPTO_ML_TRADING_URL``, dry-run
    unless ``CRYPTO_ML_TRADING_DRY_RUN=0`` (which also needs ``CRYPTO_ML_TRADING_LIVE=1``). A trading
    setting under its old name (``CRYPTO_ML_BROKER``, ``CRYPTO_ML_LIVE_TRADING``...) is refused with
    its new name.
    """
    old = sorted(k for k in RENAMED_ENV if env_str(k))
    if old:
        raise ValueError(
            "trading settings are named CRYPTO_ML_TRADING_* now; rename "
            + ", ".join(f"{k} to {RENAMED_ENV[k]}" for k in old)
            + " (CRYPTO_ML_BROKER_URL is the prediction engine's Celery broker, not the order endpoint)"
        )
    name = (name or env_str(BROKER_ENV) or "paper").strip().lower()
    if name == "paper":
        return PaperBroker(url)
    if name == "http":
        endpoint = env_url(BROKER_URL_ENV)
        if not endpoint:
            raise ValueError(f"the http broker needs {BROKER_URL_ENV} (the order endpoint)")
        dry_run = env_bool(BROKER_DRY_RUN_ENV, True)
        return HTTPBroker(endpoint, dry_run=dry_run, ledger_url=url)
    raise ValueError(f"unknown broker {name!r} (from {BROKER_ENV}); expected 'paper' or 'http'")
