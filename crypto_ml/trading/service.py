"""One owner per write and per decision: record the prediction and its decision once, then carry
out exactly the recorded order.

The pipeline splits the work over two tasks, each the only writer of what it writes:

- :func:`record_decision` (the ``decide`` task) stores the engine's prediction once (insert, never
  rewritten), decides once by :func:`crypto_ml.trading.rules.decide` on the broker's positions and
  records that decision on the prediction row; a trade is also recorded, *before* anything is
  sent, as the write-ahead trade request (status ``"pending"``). Called again (a retry, a cleared
  task) it returns the recorded decision unchanged, whatever the positions are by then.
- :func:`place_recorded_order` (the ``issue_trade_request`` task) sends exactly the recorded order
  under its idempotency key and records the broker's answer. An order already answered is not
  sent again; one whose answer was lost is re-sent under the same key (the broker keeps the
  first). It never decides anything.

:func:`handle_prediction` chains the two for callers outside Airflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import logging
from typing import Any

from sqlalchemy import select, update

from crypto_ml.storage.db import get_engine, session_scope, upsert
from crypto_ml.storage.models import Prediction, TradeRequest, utcnow
from crypto_ml.storage.repository import store_prediction, store_trade_request
from crypto_ml.trading.brokers import Broker, BrokerError, OrderRequest, broker_from_config
from crypto_ml.trading.rules import TradingRules, decide, expected_return_of

log = logging.getLogger(__name__)

#: Trade-request statuses that are the broker's final answer: never sent again.
ANSWERED = ("filled", "accepted", "rejected", "dry_run", "cancelled")


class DecisionError(RuntimeError):
    """The recorded decision does not allow what was asked (e.g. an order for a "store" decision,
    or for a prediction nobody decided on)."""


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)[:10]).isoformat()


def idempotency_key(coin: str, as_of: Any, model: str, version: int, horizon: int) -> str:
    """Stable order key of one prediction: ``"cml-" + sha256(coin|as_of|model|version|horizon)``.

    ``as_of`` may be a date, datetime or ISO string (only the day counts).
    """
    text = f"{coin}|{_iso(as_of)}|{model}|{int(version)}|{int(horizon)}"
    return "cml-" + hashlib.sha256(text.encode()).hexdigest()


def _key_of(prediction: dict[str, Any]) -> str:
    p = prediction
    return idempotency_key(p["coin"], p["as_of"], p["model"], p["version"], p["horizon"])


def _where(p: dict[str, Any], model=Prediction):
    return (
        (model.coin == p["coin"]) & (model.as_of == dt.date.fromisoformat(_iso(p["as_of"])))
        & (model.model == p["model"]) & (model.version == int(p["version"]))
        & (model.horizon == int(p["horizon"]))
    )


def _store_once(p: dict[str, Any], run_id: str | None, url: str | None) -> None:
    """Insert the prediction unless it is stored (never rewritten)."""
    accepted = inspect.signature(store_prediction).parameters
    extra = {k: p[k] for k in ("intervals", "interval_method") if k in accepted and p.get(k) is not None}
    store_prediction(
        coin=p["coin"], as_of=p["as_of"], model=p["model"], version=p["version"], horizon=p["horizon"],
        values=p["values"], last_close=p["last_close"], run_id=run_id, url=url, overwrite=False, **extra,
    )


def recorded_decision(prediction: dict[str, Any], url: str | None = None) -> dict[str, Any] | None:
    """The decision recorded for ``prediction``: ``{decision, reason, decided_at, trade}`` with
    ``trade`` the trade-request row (or None); None when nobody decided yet."""
    with get_engine(url).connect() as conn:
        row = conn.execute(
            select(Prediction.decision, Prediction.decision_reason, Prediction.decided_at).where(_where(prediction))
        ).first()
        if row is None or row.decision is None:
            return None
        trade = conn.execute(
            select(TradeRequest.__table__).where(TradeRequest.idempotency_key == _key_of(prediction))
        ).first()
    return {"decision": row.decision, "reason": row.decision_reason, "decided_at": row.decided_at,
            "trade": dict(trade._mapping) if trade is not None else None}


def _summary(p: dict[str, Any], recorded: dict[str, Any], *, duplicate: bool) -> dict[str, Any]:
    trade = recorded["trade"]
    return {
        "coin": p["coin"],
        "as_of": _iso(p["as_of"]),
        "decision": recorded["decision"],
        "reason": recorded["reason"],
        "side": trade["side"] if trade else None,
        "quantity": float(trade["quantity"]) if trade else 0.0,
        "status": trade["status"] if trade else "stored",
        "duplicate": duplicate,
        "idempotency_key": _key_of(p),
    }


def record_decision(
    prediction: dict[str, Any],
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Store ``prediction`` once and decide on it once; the recorded decision as a summary.

    Returns
    -------
    dict
        JSON-able ``{coin, as_of, decision ("trade"|"store"), reason, side, quantity, status,
        duplicate, idempotency_key}``; ``status`` is ``"pending"`` for a trade not sent yet (the
        write-ahead row), the broker's answer once sent, ``"stored"`` for a store decision;
        ``duplicate`` is true when the decision had been recorded before this call.
    """
    p = prediction
    _store_once(p, run_id, url)
    recorded = recorded_decision(p, url)
    if recorded is not None:
        log.info("%s %s: decided before: %s (%s)", p["coin"], _iso(p["as_of"]), recorded["decision"], recorded["reason"])
        return _summary(p, recorded, duplicate=True)

    rules = rules or TradingRules()
    if kill_switch:
        decision = decide(prediction=p, position_qty=0.0, total_notional=0.0, kill_switch=True, rules=rules)
    else:
        broker = broker or broker_from_config(url=url)
        decision = decide(prediction=p, position_qty=broker.position(p["coin"]),
                          total_notional=broker.total_notional(), kill_switch=False, rules=rules)
    now = utcnow()
    with session_scope(url) as session:  # the decision and its order: one transaction
        if decision.action == "trade":
            assert decision.side is not None
            upsert(session, TradeRequest, [dict(
                coin=p["coin"], as_of=dt.date.fromisoformat(_iso(p["as_of"])), model=p["model"],
                version=int(p["version"]), horizon=int(p["horizon"]), side=decision.side,
                quantity=float(decision.quantity), price=float(decision.price),
                expected_return=float(expected_return_of(p)), broker=broker.name,
                status="pending", idempotency_key=_key_of(p), response=None, created_at=now, updated_at=now,
            )], update_columns=[])
        # Compare-and-set: the first decision wins, a concurrent second one changes nothing.
        won = session.execute(update(Prediction).where(_where(p) & Prediction.decision.is_(None))
                              .values(decision=decision.action, decision_reason=decision.reason,
                                      decided_at=now)).rowcount == 1
    recorded = recorded_decision(p, url)
    assert recorded is not None
    log.info("%s %s: decided %s (%s)", p["coin"], _iso(p["as_of"]), recorded["decision"], recorded["reason"])
    return _summary(p, recorded, duplicate=not won)


def place_recorded_order(
    prediction: dict[str, Any],
    *,
    kill_switch: bool,
    broker: Broker | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """Carry out exactly the order :func:`record_decision` recorded for ``prediction``.

    Sends it under its idempotency key unless the broker already answered (then nothing is sent
    and ``duplicate`` is true). With the kill switch on, a pending order is cancelled, not sent.

    Raises
    ------
    DecisionError
        When no decision is recorded, or it was "store" (there is no order to place).
    BrokerError
        When the broker cannot be reached; the request stays recorded (status ``"error"``) and a
        retry sends the same order under the same key.
    """
    p = prediction
    recorded = recorded_decision(p, url)
    what = f"{p['coin']} as of {_iso(p['as_of'])} ({p['model']} v{p['version']}, horizon {p['horizon']})"
    if recorded is None:
        raise DecisionError(f"no decision is recorded for {what}; the decide task records it first")
    trade = recorded["trade"]
    if recorded["decision"] != "trade" or trade is None:
        raise DecisionError(f"the recorded decision for {what} is {recorded['decision']!r} "
                            f"({recorded['reason']}): there is no order to place")
    if trade["status"] in ANSWERED:
        log.info("%s: order %s already answered (%s); nothing sent", what, trade["idempotency_key"], trade["status"])
        return _summary(p, recorded, duplicate=True)
    fields = {k: trade[k] for k in ("coin", "as_of", "model", "version", "horizon", "side", "quantity",
                                    "price", "expected_return", "broker", "idempotency_key")}
    if kill_switch:
        store_trade_request(**fields, status="cancelled", response={"reason": "kill switch on"}, url=url)
        log.warning("%s: kill switch on; the recorded order was cancelled, not sent", what)
        return _summary(p, recorded_decision(p, url), duplicate=False)
    broker = broker or broker_from_config(url=url)
    if broker.name != trade["broker"]:
        raise DecisionError(f"the order for {what} was decided for the {trade['broker']!r} broker, "
                            f"but the configured broker is {broker.name!r}")
    order = OrderRequest(trade["idempotency_key"], trade["coin"], trade["side"], float(trade["quantity"]),
                         float(trade["price"]), _iso(trade["as_of"]))
    try:
        result = broker.place_order(order)
    except BrokerError as exc:
        store_trade_request(**fields, status="error", response={"error": str(exc)}, url=url)
        raise
    store_trade_request(**fields, status=result.status, response=result.raw, url=url)
    summary = _summary(p, recorded_decision(p, url), duplicate=result.duplicate)
    if result.reason and result.status == "rejected":
        summary["reason"] = f"{recorded['reason']}; rejected: {result.reason}"
    log.info("%s: %s %g at %g -> %s%s", what, order.side, order.quantity, order.price, result.status,
             " (duplicate)" if result.duplicate else "")
    return summary


def handle_prediction(
    prediction: dict[str, Any],
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """:func:`record_decision`, then for a trade :func:`place_recorded_order` (outside Airflow)."""
    if broker is None and not kill_switch:
        broker = broker_from_config(url=url)
    decided = record_decision(prediction, kill_switch=kill_switch, rules=rules, broker=broker, url=url,
                              run_id=run_id)
    if decided["decision"] != "trade":
        return decided
    placed = place_recorded_order(prediction, kill_switch=kill_switch, broker=broker, url=url)
    placed["duplicate"] = placed["duplicate"] or (decided["duplicate"] and decided["status"] in ANSWERED)
    return placed

