"""The submit task waits for its result (``wait_for_completion``, no sensor), then the store."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import StorePredictionOperator
from crypto_ml.operators.transform import CoinTransformOperator

COINS = ["bitcoin", "ethereum", "litecoin"]
DAY = "2017-07-15"

with DAG(
    "submit_wait_store",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    doc_md=__doc__,
    tags=["crypto-ml", "example"],
    default_args={"retries": 2},
):
    for coin in COINS:
        transform = CoinTransformOperator(task_id=f"transform_{coin}", coin=coin, as_of=DAY)
        predict = EngineSubmitOperator(
            task_id=f"predict_{coin}",
            model="drift",
            closes=transform.output,
            wait_for_completion=True,
            timeout=300,
        )
        StorePredictionOperator(task_id=f"store_{coin}", prediction=predict.output)
