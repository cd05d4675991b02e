"""Test DAG: submit to an engine nobody serves, wait with a short timeout."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.sensors.engine import EngineTaskSensor

with DAG(
    dag_id="engine_down",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    tags=["crypto-ml", "test"],
) as dag:
    submit = EngineSubmitOperator(task_id="submit_prediction", coin="bitcoin", as_of="2017-06-05")
    EngineTaskSensor(
        task_id="wait_for_prediction", engine_task_id=submit.output, poke_interval=0.5, timeout=4, retries=0
    )
