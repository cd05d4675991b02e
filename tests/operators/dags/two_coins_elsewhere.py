"""A DAG as a data engineer writes one with our operators: its own coins, its own project
database (``db_conn_id``) and engine (``engine_conn_id``), next to standard operators.

README.md shows this DAG (its "A DAG of your own" example); tests/operators/test_custom_dag.py
runs it and checks that the README's code builds the same tasks.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, TaskGroup

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import StorePredictionOperator, TradeBranchOperator, TradeRequestOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.sensors.engine import EngineTaskSensor

DAY = "2017-06-05"
DB, ENGINE = "research_db", "research_engine"  # Connection ids


def count(**_):
    from crypto_ml import storage
    from crypto_ml.hooks.database import CryptoDatabaseHook

    return len(storage.get_predictions(as_of=DAY, url=CryptoDatabaseHook(DB).get_url()))


with DAG(
    "two_coins_elsewhere",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    doc_md=__doc__,
    tags=["crypto-ml", "example"],
    default_args={"retries": 2},
) as dag:
    start = EmptyOperator(task_id="start")
    done = PythonOperator(task_id="count", python_callable=count, trigger_rule="none_failed_min_one_success")
    for coin in ["litecoin", "ethereum"]:
        with TaskGroup(coin) as group:
            transform = CoinTransformOperator(task_id="transform", coin=coin, as_of=DAY, db_conn_id=DB)
            submit = EngineSubmitOperator(
                task_id="submit",
                coin=coin,
                as_of=DAY,
                model="drift",
                closes=transform.output,
                engine_conn_id=ENGINE,
            )
            wait = EngineTaskSensor(task_id="wait", engine_task_id=submit.output, engine_conn_id=ENGINE)
            decide = TradeBranchOperator(
                task_id="decide",
                prediction=wait.output,
                db_conn_id=DB,
                store_task_id=f"{coin}.store",
                trade_task_id=f"{coin}.trade",
            )
            decide >> [
                StorePredictionOperator(task_id="store", prediction=wait.output, db_conn_id=DB),
                TradeRequestOperator(task_id="trade", prediction=wait.output, db_conn_id=DB),
            ]
        start >> group >> done
