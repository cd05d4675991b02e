"""
### bench_noop — the orchestration floor

The same shape and task count as a daily run (one poll, then per coin: 7 tasks), every task a
no-op: what Airflow itself costs on this machine.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task, task_group

with DAG(
    dag_id="bench_noop",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    tags=["crypto-ml", "benchmark"],
    default_args={"retries": 2},
    doc_md=__doc__,
) as dag:

    @task
    def poll_new_data(*, dag_run=None) -> list[int]:
        return list(range(int(dag_run.conf.get("coins", 85))))

    @task_group(group_id="coin")
    def coin_pipeline(coin: int):
        @task
        def step(x, name: str):
            return x

        a = step.override(task_id="transform")(coin, "transform")
        b = step.override(task_id="submit_prediction")(a, "submit")
        c = step.override(task_id="wait_for_prediction")(b, "wait")
        d = step.override(task_id="decide")(c, "decide")
        e = step.override(task_id="store_prediction")(d, "store")
        f = step.override(task_id="issue_trade_request")(d, "trade")
        g = step.override(task_id="report")(c, "report")
        [e, f] >> g

    coin_pipeline.expand(coin=poll_new_data())
