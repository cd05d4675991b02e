"""The one entry point of the pipeline: store a prediction, decide, and maybe place one order.

:func:`handle_prediction` is idempotent: calling it again with the same prediction (an Airflow
retry, a cleared run) stores one prediction row, one trade request row and places one order. The
first decision to trade is recorded (``trade_requests``, status ``"pending"``) *before* the order is
placed, and later calls replay exactly that order under the same idempotency key, so positions that
moved in between cannot change what is sent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from sqlalchemy import select

from crypto_ml.storage.db import get_engine, session_scope, upsert
from crypto_ml.storage.models import TradeRequest, utcnow
from crypto_ml.storage.repository import store_prediction, store_trade_request
from crypto_ml.trading.brokers import Broker, BrokerError, OrderRequest, broker_from_config
from crypto_ml.trading.rules import Decision, TradingRules, decide, expected_return_of

log = logging.getLogger(__name__)


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


def _recorded(key: str, url: str | None) -> dict[str, Any] | None:
    stmt = select(TradeRequest.__table__).where(TradeRequest.idempotency_key == key)
    with get_engine(url).connect() as conn:
        row = conn.execute(stmt).first()
    return dict(row._mapping) if row is not None else None


def _record_pending(trade: dict[str, Any], url: str | None) -> dict[str, Any]:
    """Insert the trade request with status "pending" unless it exists; return the recorded row."""
    now = utcnow()
    row = {k: v for k, v in trade.items() if k != "url"}
    row.update(as_of=dt.date.fromisoformat(_iso(row["as_of"])), version=int(row["version"]),
               horizon=int(row["horizon"]), quantity=float(row["quantity"]), price=float(row["price"]),
               expected_return=float(row["expected_return"]), status="pending", response=None,
               created_at=now, updated_at=now)
    with session_scope(url) as session:
        upsert(session, TradeRequest, [row], update_columns=[])
    recorded = _recorded(trade["idempotency_key"], url)
    assert recorded is not None
    return recorded


def decide_for(
    prediction: dict[str, Any],
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
) -> Decision:
    """Decide on one prediction without side effects (for the pipeline's branch task).

    The kill switch wins. Otherwise, when a trade request for this prediction is already recorded in
    the project DB at ``url`` (an earlier try), that trade is returned unchanged; else
    :func:`crypto_ml.trading.rules.decide` on the broker's current position and total notional.
    ``broker`` defaults to :func:`broker_from_config` (on ``url``), ``rules`` to ``TradingRules()``.
    """
    rules = rules or TradingRules()
    if kill_switch:
        return decide(prediction=prediction, position_qty=0.0, total_notional=0.0, kill_switch=True, rules=rules)
    recorded = _recorded(_key_of(prediction), url)
    if recorded is not None:
        return Decision("trade", recorded["side"], float(recorded["quantity"]), float(recorded["price"]),
                        f"already requested ({recorded['status']}); replaying the recorded order")
    broker = broker or broker_from_config(url=url)
    return decide(
        prediction=prediction,
        position_qty=broker.position(prediction["coin"]),
        total_notional=broker.total_notional(),
        kill_switch=False,
        rules=rules,
    )


def handle_prediction(
    prediction: dict[str, Any],
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Store a prediction, decide, and for a trade place the order and record it.

    Parameters
    ----------
    prediction
        The engine's dict: ``coin, as_of, model, version, horizon, values, last_close`` (and
        ``expected_return``, recomputed by storage as ``values[-1] / last_close - 1``).
    kill_switch
        The Airflow Variable's value; true stores only (an already recorded order is not re-sent).
    rules, broker, url, run_id
        Trading limits (default ``TradingRules()``), broker (default :func:`broker_from_config`),
        project DB URL, Airflow run id stored with the prediction.

    Returns
    -------
    dict
        JSON-able ``{coin, as_of, decision ("trade"|"store"), reason, side, quantity, status,
        duplicate, idempotency_key}``; ``status`` is the broker's (``filled``, ``accepted``,
        ``dry_run``, ``rejected``) for a trade, ``"stored"`` otherwise.

    Raises
    ------
    BrokerError
        When the broker cannot be reached; the trade request stays recorded (status ``"error"``) and
        a retry replays the same order under the same key.
    """
    rules = rules or TradingRules()
    p = prediction
    store_prediction(
        coin=p["coin"], as_of=p["as_of"], model=p["model"], version=p["version"], horizon=p["horizon"],
        values=p["values"], last_close=p["last_close"], run_id=run_id, url=url,
    )
    key = _key_of(p)
    if not kill_switch:
        broker = broker or broker_from_config(url=url)
    decision = decide_for(p, kill_switch=kill_switch, rules=rules, broker=broker, url=url)
    summary: dict[str, Any] = {
        "coin": p["coin"],
        "as_of": _iso(p["as_of"]),
        "decision": decision.action,
        "reason": decision.reason,
        "side": decision.side,
        "quantity": decision.quantity,
        "status": "stored",
        "duplicate": False,
        "idempotency_key": key,
    }
    if decision.action != "trade":
        log.info("%s %s: store only (%s)", p["coin"], summary["as_of"], decision.reason)
        return summary

    assert broker is not None and decision.side is not None
    trade = dict(
        coin=p["coin"], as_of=p["as_of"], model=p["model"], version=p["version"], horizon=p["horizon"],
        side=decision.side, quantity=decision.quantity, price=decision.price,
        expected_return=expected_return_of(p), broker=broker.name, idempotency_key=key, url=url,
    )
    # Write-ahead: the first decision is fixed (insert-if-absent) before anything is sent, and the
    # order is built from the recorded row, so even concurrent calls send one identical order.
    recorded = _record_pending(trade, url)
    trade.update(side=recorded["side"], quantity=float(recorded["quantity"]), price=float(recorded["price"]))
    order = OrderRequest(key, p["coin"], trade["side"], trade["quantity"], trade["price"], _iso(p["as_of"]))
    try:
        result = broker.place_order(order)
    except BrokerError as exc:
        store_trade_request(**trade, status="error", response={"error": str(exc)})
        raise
    store_trade_request(**trade, status=result.status, response=result.raw)
    summary.update(status=result.status, duplicate=result.duplicate)
    if result.reason and result.status == "rejected":
        summary["reason"] = f"{decision.reason}; rejected: {result.reason}"
    log.info("%s %s: %s %g at %g -> %s%s", p["coin"], summary["as_of"], decision.side, decision.quantity,
             decision.price, result.status, " (duplicate)" if result.duplicate else "")
    return summary
