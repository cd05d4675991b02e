"""
### bench_mapped_group — the alternative fan-out design, for the benchmark only

The same per-coin steps as `crypto_ml_coin`, as a task group mapped over the coins inside one
DAG run. `@task.branch` inside a mapped task group does not skip the unchosen branch on Airflow
3.3.2 (apache/airflow#67265), so here each leaf decides and skips itself.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, TriggerRule, task, task_group

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.sensors.engine import EngineTaskSensor

with DAG(
    dag_id="bench_mapped_group",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    tags=["crypto-ml", "benchmark"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=20)},
    doc_md=__doc__,
    render_template_as_native_obj=True,
) as dag:

    @task
    def poll_new_data(*, dag_run=None) -> list[str]:
        from crypto_ml.pipeline.steps import poll

        return poll(dag_run.conf.get("logical_date") or dag_run.run_after)["coins"]

    @task_group(group_id="coin")
    def coin_pipeline(coin: str):
        transform = CoinTransformOperator(task_id="transform", coin=coin, as_of="{{ dag_run.conf['as_of'] }}")
        submit = EngineSubmitOperator(
            task_id="submit_prediction",
            coin=coin,
            as_of="{{ dag_run.conf['as_of'] }}",
            model="{{ dag_run.conf.get('model', 'naive') }}",
            closes=transform.output,
        )
        wait = EngineTaskSensor(
            task_id="wait_for_prediction", engine_task_id=submit.output, poke_interval=2.0, timeout=900
        )

        @task
        def store_prediction(prediction: dict) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from crypto_ml.operators.trading import kill_switch_on
            from crypto_ml.trading.service import record_decision

            # stores the prediction once and records the decision once (the shape of crypto_ml_coin)
            if record_decision(prediction, kill_switch=kill_switch_on())["decision"] == "trade":
                raise AirflowSkipException("the rules say trade")
            return {"coin": prediction["coin"], "decision": "store"}

        @task
        def issue_trade_request(prediction: dict) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from crypto_ml.operators.trading import kill_switch_on
            from crypto_ml.trading.service import place_recorded_order, record_decision

            if record_decision(prediction, kill_switch=kill_switch_on())["decision"] != "trade":
                raise AirflowSkipException("the rules say store")
            return place_recorded_order(prediction, kill_switch=kill_switch_on())

        @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def report(prediction: dict) -> dict:
            return {"coin": prediction["coin"], "version": prediction["version"]}

        [store_prediction(wait.output), issue_trade_request(wait.output)] >> report(wait.output)

    coin_pipeline.expand(coin=poll_new_data())
