"""Operators: record the prediction and its decision once (branch), store the prediction (after
the branch or without one), and carry out the recorded trade request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator, BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Airflow Variable that routes every prediction to store-only when "true".
KILL_SWITCH_VARIABLE = "crypto_ml_kill_switch"


def kill_switch_on(variable: str = KILL_SWITCH_VARIABLE) -> bool:
    """Read the kill switch (an Airflow Variable; missing means off). Read at run time only."""
    from airflow.sdk import Variable

    value = Variable.get(variable, default="false")
    return str(value).strip().lower() in ("1", "true", "yes", "on")


DEFAULT_DB_CONN_ID = "crypto_ml_db"


def as_prediction(value: Any, task_id: str = "") -> dict[str, Any]:
    """The engine's prediction dict from what the upstream task handed over.

    A sensor that ends in the triggerer (``TaskSuccessEvent(xcoms=...)``) has its XCom written by
    the scheduler, which in Airflow 3.3 serialises the value once more: the next task pulls the
    dict's JSON text. Both forms are accepted; anything else is refused with its type named.
    """
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise TypeError(f"{task_id}: prediction is text but not JSON: {str(value)[:80]!r}") from None
    if not isinstance(value, dict):
        raise TypeError(f"{task_id}: prediction must be the engine's result dict, got {type(value).__name__}")
    return value


class _TakesPrediction:
    """Mixin: ``self.prediction`` is the prediction dict once the templates are rendered."""

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        self.prediction = as_prediction(self.prediction, self.task_id)  # type: ignore[attr-defined]


def _db_url(db_conn_id: str) -> str:
    from crypto_ml.hooks.database import CryptoDatabaseHook

    return CryptoDatabaseHook(db_conn_id).get_url()


def coin_report(prediction: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """What a coin run did (the return value of its store or trade task, shown in the grid):
    the forecast and the branch's outcome."""
    return {
        "coin": prediction["coin"],
        "as_of": prediction["as_of"],
        "model": prediction["model"],
        "version": prediction["version"],
        "forecast": [round(v, 6) for v in prediction["values"]],
        "expected_return": prediction["expected_return"],
        "outcome": outcome,
    }


class TradeBranchOperator(_TakesPrediction, BaseBranchOperator):
    """Store the prediction once, decide once, record the decision; choose the branch from it.

    The one writer of the prediction and of the decision (:func:`crypto_ml.trading.service.
    record_decision`): the prediction row is inserted once (never rewritten), the decision is
    recorded on it, and a trade is recorded as the write-ahead trade request before anything is
    sent. Cleared or retried, it returns the recorded decision unchanged, whatever the positions
    are by then. The decision is logged and pushed to XCom within the run's report (key
    ``report``: :func:`coin_report`, the decision under ``outcome``; one XCom, one write to the
    metadata DB per coin), so a store branch needs no task of its own (an
    ``EmptyOperator``, as in ``crypto_ml_coin``); a :class:`StorePredictionOperator` there finds
    the decision recorded, writes nothing and returns the report.

    :param prediction: the engine's prediction dict (templated; e.g. the sensor's output).
    :param store_task_id: task to run when nothing is traded.
    :param trade_task_id: task to run when the recorded decision is to trade.
    :param kill_switch_variable: Airflow Variable of the kill switch.
    :param db_conn_id: Connection id of the project database (templated; see
        :class:`~crypto_ml.hooks.database.CryptoDatabaseHook`).
    """

    template_fields: Sequence[str] = ("prediction", "db_conn_id")
    ui_color = "#f4e1f2"

    def __init__(
        self,
        *,
        prediction: Any,
        store_task_id: str = "store_prediction",
        trade_task_id: str = "issue_trade_request",
        kill_switch_variable: str = KILL_SWITCH_VARIABLE,
        db_conn_id: str = DEFAULT_DB_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction
        self.store_task_id = store_task_id
        self.trade_task_id = trade_task_id
        self.kill_switch_variable = kill_switch_variable
        self.db_conn_id = db_conn_id

    def choose_branch(self, context: Context) -> str:
        from crypto_ml.trading.service import record_decision

        decision = record_decision(
            self.prediction,
            kill_switch=kill_switch_on(self.kill_switch_variable),
            url=_db_url(self.db_conn_id),
            run_id=context["ti"].run_id,
        )
        self.log.info(
            "%s: %s (%s)%s",
            self.prediction.get("coin"),
            decision["decision"],
            decision["reason"],
            " [recorded before]" if decision["duplicate"] else "",
        )
        context["ti"].xcom_push(key="report", value=coin_report(self.prediction, decision))
        return self.trade_task_id if decision["decision"] == "trade" else self.store_task_id


class StorePredictionOperator(_TakesPrediction, BaseOperator):
    """Store the prediction once (:func:`crypto_ml.trading.service.store_prediction_once`), with
    or without a branch before it. Returns the run's report (:func:`coin_report`: the forecast,
    and the recorded decision as its outcome).

    After a :class:`TradeBranchOperator` (its store branch) the decision is recorded and the
    prediction stored: this task writes nothing and reports them. Without a branch it inserts
    the prediction (never rewritten) and records "store" on it, reason "stored without a
    branch", so a retry or a clear writes nothing twice. In a DAG with a branch, put it after
    the branch: a store that runs first records "store", which the branch then returns (the
    first decision wins).

    :param prediction: the engine's prediction dict (templated; e.g. the sensor's output).
    :param db_conn_id: Connection id of the project database (templated; see
        :class:`~crypto_ml.hooks.database.CryptoDatabaseHook`).
    """

    template_fields: Sequence[str] = ("prediction", "db_conn_id")
    ui_color = "#e2f0d9"

    def __init__(self, *, prediction: Any, db_conn_id: str = DEFAULT_DB_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction
        self.db_conn_id = db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from crypto_ml.trading.service import store_prediction_once

        p = self.prediction
        recorded = store_prediction_once(p, url=_db_url(self.db_conn_id), run_id=context["ti"].run_id)
        self.log.info(
            "%s %s as of %s: model %s v%s, expected return %+.2f%% over %d days; decision %s (%s)",
            "stored before:" if recorded["duplicate"] else "stored",
            p["coin"],
            p["as_of"],
            p["model"],
            p["version"],
            100 * p["expected_return"],
            p["horizon"],
            recorded["decision"],
            recorded["reason"],
        )
        return coin_report(p, recorded)


class TradeRequestOperator(_TakesPrediction, BaseOperator):
    """Carry out exactly the order ``decide`` recorded (:func:`crypto_ml.trading.service.
    place_recorded_order`); it never decides and never writes the prediction.

    A retried or re-run task never places a second order: an answered order is not sent again,
    and an unanswered one is re-sent under the same idempotency key, which both the paper ledger
    and the HTTP broker honour. The broker is the paper broker unless
    ``CRYPTO_ML_TRADING_BROKER=http`` (dry run unless live trading is explicitly configured).

    Returns the run's report (:func:`coin_report`, the order's summary as its outcome).

    :param prediction: the engine's prediction dict (templated).
    :param kill_switch_variable: Airflow Variable of the kill switch.
    :param db_conn_id: Connection id of the project database (templated).
    """

    template_fields: Sequence[str] = ("prediction", "db_conn_id")
    ui_color = "#fbe3d6"

    def __init__(
        self,
        *,
        prediction: Any,
        kill_switch_variable: str = KILL_SWITCH_VARIABLE,
        db_conn_id: str = DEFAULT_DB_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction
        self.kill_switch_variable = kill_switch_variable
        self.db_conn_id = db_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from crypto_ml.trading.service import place_recorded_order

        summary = place_recorded_order(
            self.prediction,
            kill_switch=kill_switch_on(self.kill_switch_variable),
            url=_db_url(self.db_conn_id),
        )
        self.log.info("trade request: %s", summary)
        return coin_report(self.prediction, summary)
