"""
### crypto_ml_coin — one coin's daily pipeline

`transform` (validate the coin's stored prices up to `as_of`, compute features) →
`submit_prediction` (asks the prediction engine, a Celery app, for the coin's forecast as of that
day, from the triggerer: no worker process; the engine reads the validated closes from the project
database) → `wait_for_prediction` (starts and ends in the triggerer too; fails clearly after
its timeout) → `decide` (stores the
prediction once, records the decision by the trading rules; the kill switch is the Airflow Variable
`crypto_ml_kill_switch`; its XCom `report` is the run's forecast and decision) →
`store_prediction` (nothing left to do: an empty task the scheduler marks done) **or**
`issue_trade_request` (places exactly the recorded order; returns the report with the order):
five task instances, two of them on a worker.

The master DAG `crypto_ml_master` triggers one run of this DAG per coin with new data (run id
`<coin>__<day>`, then `__<model>` / `__h<horizon>` when they are not the defaults). Trigger one coin by hand:

    airflow dags trigger crypto_ml_coin --conf '{"coin": "bitcoin", "as_of": "2017-06-05"}'

Params are validated when the run is created: a coin outside the market's universe, an unknown
model or a horizon outside 1..60 is refused with a message naming the valid values. (When the
universe is the top N markets of an exchange, resolved each day, the coin id's shape is checked
then and the universe when the run starts.) What Airflow cannot check then fails `transform`, the
first task, at once and without retries, in one line: a conf key that is not a param (Airflow
accepts it; `{"coins": [...]}` names the valid keys instead of running the default coin), and an
`as_of` after the market's last closed day (the replay's or a CSV folder's last day; for an
exchange, the last day whose candle had closed at the run's `run_after`), and a model served only
from a trained version (the LSTM) that `crypto_ml_train` has not trained for the coin up to
`as_of` (the line gives the command that trains it). Without `as_of`, the run predicts as of its
logical date's day on the market: the replayed history day for the replay (see
`crypto_ml.pipeline.catalog.replay_day`), the day itself for an exchange or a CSV folder (or the
last day whose candle had closed when the run was created, its `run_after`: every task of the run,
and a clear of it later, names that one day).
Every task writes idempotently:
clearing and re-running any of them stores nothing twice and places no second order.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.operators.trading import TradeBranchOperator, TradeRequestOperator
from crypto_ml.operators.transform import CoinTransformOperator
from crypto_ml.pipeline.catalog import (
    DEFAULT_MODEL,
    MAX_HORIZON,
    MODEL_NAMES,
    coin_max_active_runs,
    coin_param_schema,
    run_market_day,
)
from crypto_ml.pipeline.params import DEFAULT_HORIZON
from crypto_ml.sensors.engine import EngineTaskSensor

with DAG(
    dag_id="crypto_ml_coin",
    description="One coin and day: transform, predict on the engine, then store or trade",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=coin_max_active_runs(),
    tags=["crypto-ml", "pipeline"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=20)},
    params={
        "coin": Param(type="string", description="coin id (bitcoin, btc-usdt, ...)", **coin_param_schema()),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="last day of data (YYYY-MM-DD); default: the market day of the run's logical date",
        ),
        "horizon": Param(
            DEFAULT_HORIZON, type="integer", minimum=1, maximum=MAX_HORIZON, description="days to forecast"
        ),
        "model": Param(DEFAULT_MODEL, type="string", enum=list(MODEL_NAMES), description="model name"),
    },
    user_defined_macros={"market_day": run_market_day},
    render_template_as_native_obj=True,
    doc_md=__doc__,
) as dag:
    transform = CoinTransformOperator(
        task_id="transform",
        coin="{{ params.coin }}",
        as_of="{{ params.as_of or market_day(dag_run) }}",
        model="{{ params.model }}",
    )
    submit = EngineSubmitOperator(
        task_id="submit_prediction",
        # A claim, not the data: the engine reads the closes the transform validated from the project
        # database. Coin and day come from params, so the triggerer sends it without reading an XCom;
        # an empty as_of is the run's market day, as above (the triggerer has no DAG macros).
        coin="{{ params.coin }}",
        as_of="{{ params.as_of or '' }}",
        history="database",
        model="{{ params.model }}",
        horizon="{{ params.horizon }}",
        start_from_trigger=True,  # sent from the triggerer: no worker process
    )
    transform >> submit
    wait = EngineTaskSensor(
        task_id="wait_for_prediction", engine_task_id=submit.output, poke_interval=2.0, timeout=900
    )
    decide = TradeBranchOperator(task_id="decide", prediction=wait.output)
    decide >> [
        # decide stored the prediction (its one writer): the store branch has nothing left to do,
        # and an EmptyOperator is marked done by the scheduler without a process.
        EmptyOperator(
            task_id="store_prediction",
            doc_md="The store-only branch: `decide` stored the "
            "prediction and recorded a store decision (its XCom `report`).",
        ),
        TradeRequestOperator(task_id="issue_trade_request", prediction=wait.output),
    ]
