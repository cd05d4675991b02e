"""Decide, then store or trade: three coins, the branch choosing per coin."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import StorePredictionOperator, TradeBranchOperator, TradeRequestOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.sensors.engine import EngineTaskSensor

COINS = ["bitcoin", "ethereum", "ark"]  # drift: store, store, buy (+7.9 %)
DAY = "2017-07-15"

with DAG(
    "branch_store_trade",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    doc_md=__doc__,
    tags=["crypto-ml", "example"],
    default_args={"retries": 2},
):
    for coin in COINS:
        transform = CoinTransformOperator(task_id=f"transform_{coin}", coin=coin, as_of=DAY)
        submit = EngineSubmitOperator(task_id=f"submit_{coin}", model="drift", closes=transform.output)
        wait = EngineTaskSensor(task_id=f"wait_{coin}", engine_task_id=submit.output, timeout=300)
        decide = TradeBranchOperator(
            task_id=f"decide_{coin}",
            prediction=wait.output,
            store_task_id=f"store_{coin}",
            trade_task_id=f"trade_{coin}",
        )
        decide >> [
            StorePredictionOperator(task_id=f"store_{coin}", prediction=wait.output),
            TradeRequestOperator(task_id=f"trade_{coin}", prediction=wait.output),
        ]
