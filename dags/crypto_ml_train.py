"""
### crypto_ml_train — weekly retraining

For every coin with data on the market day of the run (the replayed history day for the replay;
see `crypto_ml_master` and the `crypto_ml_market` Connection), sends `crypto_ml.train` to the prediction
engine's **train** queue (separate from predictions, so long trainings never starve them) and
waits for it in the triggerer. Each training publishes a model version (trained on data up to that
day) to the model store that backtests use; the daily `crypto_ml_coin` runs then predict with the
newest version trained on data up to their own day, and record its number with every prediction.

**Champion / challenger.** Each training also evaluates its new version point in time on the
recent past it did not train on (MASE against naive, interval coverage and width, the trading
rule's return, drawdown and hit rate against never trading, after fees) and records the
evaluation and the verdict with the version: *promoted* only when it beats the coin's champion (at
first naive / no-trade) by the margins of the `CRYPTO_ML_PROMOTION_*` settings
(`crypto_ml.evaluation.promotion`). The coin pipeline trades only with a promoted version and
otherwise stores the prediction with the reason (`not promoted: MASE 1.03× naive ...`). See and
override by hand, audited: `crypto-ml models list|promote|demote|history`.

**Spread over the engine's workers.** One mapped task per coin (its box in the grid is named by
the coin) sends that coin's `crypto_ml.train` to the engine's **train** queue and waits in the
triggerer: the same engine task, queue and request that `crypto_ml.engine.heavy.run_training_distributed`
sends as one Celery group (training and the promotion evaluation are one unit: the evaluation
needs the version just saved). Every engine worker consumes `train`, so the coins' trainings run
side by side on all of them. Kept per coin, not one task that sends the whole group and joins it,
because a data engineer then sees which coin failed (its own red box, its log, its error), retries
or clears that coin alone, and no Airflow worker slot is held for the hour the group takes (the
wait is deferred); a cleared coin trains again under a new engine task id, and the model store
keeps one version per fingerprint, so nothing is stored twice.

Trigger by hand: `airflow dags trigger crypto_ml_train --conf '{"model": "linear", "coins": ["bitcoin"]}'`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from crypto_ml.operators.engine import EngineSubmitOperator
from crypto_ml.pipeline.catalog import DEFAULT_MODEL, MODEL_NAMES

with DAG(
    dag_id="crypto_ml_train",
    description="Weekly: fit and store each coin's model version on the engine",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["crypto-ml", "training"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    params={
        "model": Param(DEFAULT_MODEL, type="string", enum=list(MODEL_NAMES), description="model to train"),
        "min_rows": Param(
            60, type="integer", minimum=2, description="train coins with at least this many days"
        ),
        "coins": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="only these coins (default: every coin with data that day)",
        ),
    },
    doc_md=__doc__,
) as dag:

    @task
    def coins_to_train(*, dag_run=None, dag=None, params=None) -> list[dict]:
        """Coins with data on the market day and enough history; one kwargs dict per coin. A conf
        key that is not a param, or a coin asked for that cannot be trained that day, fails the
        run here, naming them."""
        from airflow.sdk.exceptions import AirflowFailException

        from crypto_ml.hooks.database import CryptoDatabaseHook
        from crypto_ml.hooks.market import CryptoMarketHook
        from crypto_ml.markets import MarketConfigError
        from crypto_ml.pipeline.params import TriggerRefused, check_run_conf
        from crypto_ml.pipeline.steps import PipelineInputError, poll, training_coins

        try:
            check_run_conf(dag_run, dag)
            url = CryptoDatabaseHook().get_url()
            polled = poll(
                dag_run.logical_date or dag_run.run_after,
                now=dag_run.run_after,
                market=CryptoMarketHook().get_market(),
                url=url,
            )
            return training_coins(polled, coins=params["coins"], min_rows=params["min_rows"], url=url)
        except (TriggerRefused, PipelineInputError, MarketConfigError) as exc:  # no retry helps
            raise AirflowFailException(str(exc)) from None

    EngineSubmitOperator.partial(
        task_id="train",
        task="train",
        model="{{ params.model }}",
        wait_for_completion=True,
        timeout=3600,
        map_index_template="{{ task.coin }}",
    ).expand_kwargs(coins_to_train())
