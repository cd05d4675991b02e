"""A fan-out of two runs from one task (``TriggerDagRunsOperator``), for tests/pipeline/test_fanout.py."""

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from crypto_ml.operators.fanout import TriggerDagRunsOperator

START = pendulum.datetime(2026, 11, 1, tz="UTC")

with DAG("fanout_target", schedule=None, start_date=START):
    EmptyOperator(task_id="noop")

with DAG("fanout", schedule=None, start_date=START):
    TriggerDagRunsOperator(
        task_id="trigger_all",
        trigger_dag_id="fanout_target",
        runs=[
            {"trigger_run_id": f"{coin}__2017-06-25", "conf": {"coin": coin}} for coin in ("bitcoin", "ark")
        ],
    )
