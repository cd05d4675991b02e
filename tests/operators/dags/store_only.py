"""Predictions stored, nothing traded: no branch, three coins, the deployment's default
Connections (``crypto_ml_db``, ``crypto_ml_engine``)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import StorePredictionOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.sensors.engine import EngineTaskSensor

COINS = ["bitcoin", "ethereum", "litecoin"]
DAY = "2017-07-15"

with DAG(
    "store_only",
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
        StorePredictionOperator(task_id=f"store_{coin}", prediction=wait.output)
