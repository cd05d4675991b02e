"""Operators: branch on the trading rules, store a prediction, issue a trade request."""

from __future__ import annotations

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


def _db_url() -> str:
    from crypto_ml.hooks.database import CryptoDatabaseHook

    return CryptoDatabaseHook().get_url()


class TradeBranchOperator(BaseBranchOperator):
    """Choose ``store_task_id`` or ``trade_task_id`` for a prediction, by the trading rules.

    No side effects: it only reads positions and the kill switch. The decision and its reason are
    logged and pushed to XCom (key ``decision``).

    :param prediction: the engine's prediction dict (templated; e.g. the sensor's output).
    :param store_task_id: task to run when nothing is traded.
    :param trade_task_id: task to run when the rules say trade.
    :param kill_switch_variable: Airflow Variable of the kill switch.
    """

    template_fields: Sequence[str] = ("prediction",)
    ui_color = "#f4e1f2"

    def __init__(
        self,
        *,
        prediction: Any,
        store_task_id: str = "store_prediction",
        trade_task_id: str = "issue_trade_request",
        kill_switch_variable: str = KILL_SWITCH_VARIABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction
        self.store_task_id = store_task_id
        self.trade_task_id = trade_task_id
        self.kill_switch_variable = kill_switch_variable

    def choose_branch(self, context: Context) -> str:
        from crypto_ml.trading.service import decide_for

        decision = decide_for(
            self.prediction, kill_switch=kill_switch_on(self.kill_switch_variable), url=_db_url()
        )
        self.log.info("%s: %s (%s)", self.prediction.get("coin"), decision.action, decision.reason)
        context["ti"].xcom_push(key="decision", value=decision.to_dict())
        return self.trade_task_id if decision.action == "trade" else self.store_task_id


class StorePredictionOperator(BaseOperator):
    """Store a prediction in the project DB (idempotent upsert on coin, as_of, model, version,
    horizon) and return it.

    :param prediction: the engine's prediction dict (templated).
    """

    template_fields: Sequence[str] = ("prediction",)
    ui_color = "#e2f0d9"

    def __init__(self, *, prediction: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction

    def execute(self, context: Context) -> dict[str, Any]:
        from crypto_ml import storage

        p = self.prediction
        storage.store_prediction(
            coin=p["coin"], as_of=p["as_of"], model=p["model"], version=p["version"],
            horizon=p["horizon"], values=p["values"], last_close=p["last_close"],
            run_id=context["ti"].run_id, url=_db_url(),
        )
        self.log.info(
            "stored %s as of %s: model %s v%s, expected return %+.2f%% over %d days",
            p["coin"], p["as_of"], p["model"], p["version"], 100 * p["expected_return"], p["horizon"],
        )
        return {"coin": p["coin"], "as_of": p["as_of"], "decision": "store", "version": p["version"]}


class TradeRequestOperator(BaseOperator):
    """Store the prediction and issue its trade request through the configured broker.

    A retried or re-run task never places a second order: the order's idempotency key is derived
    from (coin, as_of, model, version, horizon), and both the paper ledger and the HTTP broker
    honour it. The broker is the paper broker unless ``CRYPTO_ML_BROKER=http`` (dry run unless live
    trading is explicitly configured).

    :param prediction: the engine's prediction dict (templated).
    """

    template_fields: Sequence[str] = ("prediction",)
    ui_color = "#fbe3d6"

    def __init__(
        self, *, prediction: Any, kill_switch_variable: str = KILL_SWITCH_VARIABLE, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.prediction = prediction
        self.kill_switch_variable = kill_switch_variable

    def execute(self, context: Context) -> dict[str, Any]:
        from crypto_ml.trading.service import handle_prediction

        summary = handle_prediction(
            self.prediction,
            kill_switch=kill_switch_on(self.kill_switch_variable),
            url=_db_url(),
            run_id=context["ti"].run_id,
        )
        self.log.info("trade request: %s", summary)
        return summary
