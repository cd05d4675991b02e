"""One owner per write and per decision: record the prediction and its decision once, then carry
out exactly the recorded order.

The pipeline splits the work over two tasks, each the only writer of what it writes:

- :func:`record_decision` (the ``decide`` task) stores the engine's prediction once (insert, never
  rewritten), decides once by :func:`crypto_ml.trading.rules.decide` on the broker's positions
  (only a promoted model version may trade, :func:`promotion_refusal`) and
  records that decision on the prediction row; a trade is also recorded, *before* anything is
  sent, as the write-ahead trade request (status ``"pending"``). Called again (a retry, a cleared
  task) it returns the recorded decision unchanged, whatever the positions are by then.
- :func:`place_recorded_order` (the ``issue_trade_request`` task) sends exactly the recorded order
  under its idempotency key and records the broker's answer. An order already answered is not
  sent again; one whose answer was lost is re-sent under the same key (the broker keeps the
  first). It never decides anything.

A DAG without a branch stores through :func:`store_prediction_once` (the store task): the same
insert-once of the prediction and the same compare-and-set of its decision, recording "store"
(:data:`STORED_WITHOUT_BRANCH`) when nobody decided. After a branch it finds the decision
recorded and writes nothing, so the prediction keeps one writer and one decision either way.

:func:`handle_prediction` chains the two for callers outside Airflow.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from crypto_ml.engine.prediction import PredictionRecord
from crypto_ml.storage import ledger
from crypto_ml.storage.predictions import save_prediction
from crypto_ml.trading.brokers import Broker, BrokerError, OrderRequest, broker_from_config
from crypto_ml.trading.rules import TradingRules, decide
from crypto_ml.utils.dates import iso_day

log = logging.getLogger(__name__)

#: Trade-request statuses that are the broker's final answer: never sent again.
ANSWERED = ("filled", "accepted", "rejected", "dry_run", "cancelled")

#: What the service takes as a prediction: the record, or its JSON (an XCom, an engine result).
PredictionLike = PredictionRecord | Mapping[str, Any]


class DecisionError(RuntimeError):
    """The recorded decision does not allow what was asked (e.g. an order for a "store" decision,
    or for a prediction nobody decided on)."""


def idempotency_key(coin: str, as_of: Any, model: str, version: int, horizon: int) -> str:
    """Stable order key of one prediction: ``"cml-" + sha256(coin|as_of|model|version|horizon)``.

    ``as_of`` may be a date, datetime or ISO string (only the day counts).
    """
    text = f"{coin}|{iso_day(as_of, what='as_of')}|{model}|{int(version)}|{int(horizon)}"
    return "cml-" + hashlib.sha256(text.encode()).hexdigest()


def _key_of(p: PredictionRecord) -> str:
    return idempotency_key(*p.key)


def recorded_decision(prediction: PredictionLike, url: str | None = None) -> dict[str, Any] | None:
    """The decision recorded for ``prediction``: ``{decision, reason, decided_at, trade}`` with
    ``trade`` the trade-request row (or None); None when nobody decided yet."""
    p = PredictionRecord.from_json(prediction)
    return ledger.get_decision(p.key, _key_of(p), url=url)


#: The reason recorded with "store" by a store step that found no decision (no branch ran).
STORED_WITHOUT_BRANCH = "stored without a branch"


def _summary(p: PredictionRecord, recorded: dict[str, Any], *, duplicate: bool) -> dict[str, Any]:
    trade = recorded["trade"]
    return {
        "coin": p.coin,
        "as_of": p.as_of.isoformat(),
        "decision": recorded["decision"],
        "reason": recorded["reason"],
        "side": trade["side"] if trade else None,
        "quantity": float(trade["quantity"]) if trade else 0.0,
        "status": trade["status"] if trade else "stored",
        "duplicate": duplicate,
        "idempotency_key": _key_of(p),
    }


def promotion_refusal(p: PredictionRecord, *, url: str | None = None) -> str | None:
    """Why the prediction's model version may not trade (``"not promoted: ..."``), from its
    promotion status in the model store; None when it is promoted."""
    from crypto_ml.evaluation.promotion import trade_refusal
    from crypto_ml.storage.model_versions import get_model_version

    row = get_model_version(p.coin, p.model, p.version, url=url) if int(p.version) else None
    return trade_refusal(row, p.model, p.version)


def record_decision(
    prediction: PredictionLike,
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
    run_id: str | None = None,
    require_promotion: bool | None = None,
) -> dict[str, Any]:
    """Store ``prediction`` once and decide on it once; the recorded decision as a summary.

    Only a promoted model version trades on its signal (``require_promotion``, default
    ``CRYPTO_ML_PROMOTION_REQUIRED``, on): where another would trade, the prediction is stored with
    the reason, e.g. ``"not promoted: MASE 1.03× naive (needs <= 0.98×); the rule would buy:
    ..."`` (:func:`crypto_ml.trading.rules.decide`). The kill switch comes first.

    Returns
    -------
    dict
        JSON-able ``{coin, as_of, decision ("trade"|"store"), reason, side, quantity, status,
        duplicate, idempotency_key}``; ``status`` is ``"pending"`` for a trade not sent yet (the
        write-ahead row), the broker's answer once sent, ``"stored"`` for a store decision;
        ``duplicate`` is true when the decision had been recorded before this call.
    """
    p = PredictionRecord.from_json(prediction)
    save_prediction(p, run_id=run_id, overwrite=False, url=url)  # inserted once, never rewritten
    recorded = recorded_decision(p, url)
    if recorded is not None:
        log.info("%s %s: decided before: %s (%s)", p.coin, p.as_of, recorded["decision"], recorded["reason"])
        return _summary(p, recorded, duplicate=True)

    rules = rules or TradingRules()
    as_dict = p.to_json()
    if require_promotion is None:
        from crypto_ml.evaluation.promotion import promotion_required

        require_promotion = promotion_required()
    if kill_switch:
        decision = decide(prediction=as_dict, account=None, kill_switch=True, rules=rules)
    else:
        refusal = promotion_refusal(p, url=url) if require_promotion else None
        broker = broker or broker_from_config(url=url)
        account = broker.account(
            rules.book_capital, marks={p.coin: float(p.last_close)}, as_of=p.as_of, url=url
        )
        decision = decide(
            prediction=as_dict, account=account, kill_switch=False, rules=rules, refusal=refusal
        )
    trade = None
    if decision.action == "trade":
        assert decision.side is not None and broker is not None
        trade = dict(
            coin=p.coin,
            as_of=p.as_of,
            model=p.model,
            version=p.version,
            horizon=p.horizon,
            side=decision.side,
            quantity=float(decision.quantity),
            price=float(decision.price),
            expected_return=p.expected_return,
            broker=broker.name,
            idempotency_key=_key_of(p),
        )
    # The decision and its write-ahead order in one transaction; the first decision wins.
    won = ledger.record_decision(
        p.key, decision=decision.action, reason=decision.reason, trade=trade, url=url
    )
    recorded = recorded_decision(p, url)
    assert recorded is not None
    log.info("%s %s: decided %s (%s)", p.coin, p.as_of, recorded["decision"], recorded["reason"])
    return _summary(p, recorded, duplicate=not won)


def store_prediction_once(
    prediction: PredictionLike, *, url: str | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """Store ``prediction`` once, with a "store" decision unless one is recorded; the recorded
    decision as a summary (the fields of :func:`record_decision`).

    When a decision is recorded (a branch, :func:`record_decision`, or an earlier call decided),
    nothing is written and that decision is returned (``duplicate`` true). Otherwise the
    prediction is inserted once (never rewritten) and "store" is recorded on it by the same
    compare-and-set as :func:`record_decision`, with the reason :data:`STORED_WITHOUT_BRANCH`:
    the row then says what was done with it, a retry or a clear writes nothing twice, and a
    branch that runs later returns that decision (the first decision wins) instead of trading
    a prediction already reported as stored.
    """
    p = PredictionRecord.from_json(prediction)
    recorded = recorded_decision(p, url)
    if recorded is None:
        save_prediction(p, run_id=run_id, overwrite=False, url=url)  # inserted once, never rewritten
        won = ledger.record_decision(p.key, decision="store", reason=STORED_WITHOUT_BRANCH, url=url)
        recorded = recorded_decision(p, url)
        assert recorded is not None
        log.info("%s %s: stored, %s (%s)", p.coin, p.as_of, recorded["decision"], recorded["reason"])
        return _summary(p, recorded, duplicate=not won)
    log.info("%s %s: decided before: %s (%s)", p.coin, p.as_of, recorded["decision"], recorded["reason"])
    return _summary(p, recorded, duplicate=True)


def place_recorded_order(
    prediction: PredictionLike,
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
    p = PredictionRecord.from_json(prediction)
    recorded = recorded_decision(p, url)
    what = f"{p.coin} as of {p.as_of} ({p.model} v{p.version}, horizon {p.horizon})"
    if recorded is None:
        raise DecisionError(f"no decision is recorded for {what}; the decide task records it first")
    trade = recorded["trade"]
    if recorded["decision"] != "trade" or trade is None:
        raise DecisionError(
            f"the recorded decision for {what} is {recorded['decision']!r} "
            f"({recorded['reason']}): there is no order to place"
        )
    if trade["status"] in ANSWERED:
        log.info(
            "%s: order %s already answered (%s); nothing sent",
            what,
            trade["idempotency_key"],
            trade["status"],
        )
        return _summary(p, recorded, duplicate=True)
    fields = {
        k: trade[k]
        for k in (
            "coin",
            "as_of",
            "model",
            "version",
            "horizon",
            "side",
            "quantity",
            "price",
            "expected_return",
            "broker",
            "idempotency_key",
        )
    }
    if kill_switch:
        ledger.store_trade_request(
            **fields, status="cancelled", response={"reason": "kill switch on"}, url=url
        )
        log.warning("%s: kill switch on; the recorded order was cancelled, not sent", what)
        return _summary(p, recorded_decision(p, url), duplicate=False)
    broker = broker or broker_from_config(url=url)
    if broker.name != trade["broker"]:
        raise DecisionError(
            f"the order for {what} was decided for the {trade['broker']!r} broker, "
            f"but the configured broker is {broker.name!r}"
        )
    order = OrderRequest(
        trade["idempotency_key"],
        trade["coin"],
        trade["side"],
        float(trade["quantity"]),
        float(trade["price"]),
        trade["as_of"],
    )
    try:
        result = broker.place_order(order)
    except BrokerError as exc:
        ledger.store_trade_request(**fields, status="error", response={"error": str(exc)}, url=url)
        raise
    ledger.store_trade_request(**fields, status=result.status, response=result.raw, url=url)
    summary = _summary(p, recorded_decision(p, url), duplicate=result.duplicate)
    if result.reason and result.status == "rejected":
        summary["reason"] = f"{recorded['reason']}; rejected: {result.reason}"
    log.info(
        "%s: %s %g at %g -> %s%s",
        what,
        order.side,
        order.quantity,
        order.price,
        result.status,
        " (duplicate)" if result.duplicate else "",
    )
    return summary


def handle_prediction(
    prediction: PredictionLike,
    *,
    kill_switch: bool,
    rules: TradingRules | None = None,
    broker: Broker | None = None,
    url: str | None = None,
    run_id: str | None = None,
    require_promotion: bool | None = None,
) -> dict[str, Any]:
    """:func:`record_decision`, then for a trade :func:`place_recorded_order` (outside Airflow)."""
    if broker is None and not kill_switch:
        broker = broker_from_config(url=url)
    decided = record_decision(
        prediction,
        kill_switch=kill_switch,
        rules=rules,
        broker=broker,
        url=url,
        run_id=run_id,
        require_promotion=require_promotion,
    )
    if decided["decision"] != "trade":
        return decided
    placed = place_recorded_order(prediction, kill_switch=kill_switch, broker=broker, url=url)
    placed["duplicate"] = placed["duplicate"] or (decided["duplicate"] and decided["status"] in ANSWERED)
    return placed
