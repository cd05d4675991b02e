"""One TaskGroup per coin (transform, predict, wait, store), and a summary of the stored reports."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import StorePredictionOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.sensors.engine import EngineTaskSensor

COINS = ["bitcoin", "ethereum", "litecoin"]
DAY = "2017-07-15"


def summarise(ti=None):
    reports = ti.xcom_pull(task_ids=[f"{coin}.store" for coin in COINS])
    return {r["coin"]: r["outcome"]["decision"] for r in reports}


with DAG(
    "coin_groups",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    doc_md=__doc__,
    tags=["crypto-ml", "example"],
    default_args={"retries": 2},
):
    summary = PythonOperator(task_id="summary", python_callable=summarise)
    for coin in COINS:
        with TaskGroup(coin) as group:
            transform = CoinTransformOperator(task_id="transform", coin=coin, as_of=DAY)
            submit = EngineSubmitOperator(task_id="submit", model="drift", closes=transform.output)
            wait = EngineTaskSensor(task_id="wait", engine_task_id=submit.output, timeout=300)
            StorePredictionOperator(task_id="store", prediction=wait.output)
        group >> summary
