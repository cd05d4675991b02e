"""
### crypto_ml_master — the daily fan-out

`poll_new_data` reads the market named by the Connection `crypto_ml_market` (default: the replay
of the bundled history, no network; or an exchange through ccxt, or a folder of CSV files),
resolves the day's coin universe, validates and upserts into the project DB whatever the DB lacks
up to the run's day, and lists the coins whose data includes that day. The schedule is daily with
data intervals: the run for day D starts once D is over, so D's daily candle has closed; a
backfill (`airflow backfill create --dag-id crypto_ml_master --from-date ... --to-date ...`) runs
each past day point in time. A coin that fails to load (unknown symbol, delisted market, exchange
errors after retries) is named in `poll_new_data`'s log and fails `summarize`; the other coins go
on. `run_coin_pipelines` then triggers one `crypto_ml_coin` run per coin (run id `<coin>__<day>`, see below;
one log line per coin) from one task, without waiting for them, and `wait_for_coin_runs` waits for
all of them at once in the triggerer (one task for the day, not one per coin). Each coin's
pipeline is its own DAG run: visible on its own in the grid and graph views, failing and retrying
on its own; one bad coin never blocks the others. `wait_for_coin_runs` fails
when any coin run failed (naming them); `summarize` runs after it, whatever the outcome, and logs
the day's table of forecasts and decisions (of the run's model and horizon) from the project DB.
`check_all_coins` runs last, whatever happened: green when every task upstream succeeded, failed
(naming them) otherwise, so a red run in the grid means a coin pipeline (or the poll) failed, not
only that the summary did, and a good day is green throughout.

Trigger by hand: `airflow dags trigger crypto_ml_master` (optionally
`--conf '{"horizon": 10, "model": "linear", "coins": ["bitcoin"]}'`). A value outside a param's
schema (an unknown model, a horizon outside 1..60) is refused when the run is created; a conf key
that is not a param (Airflow accepts those) fails `poll_new_data` at once, naming the valid keys;
a model served only from a trained version (the LSTM) that is not trained for the day's coins fails
`coin_runs`, before any coin run exists, with the command that trains it.

A coin run's id names what it computes: `<coin>__<day>`, then `__<model>` and `__h<horizon>` when
they are not the defaults (`bitcoin__2017-06-29__drift`). So re-triggering a day with another
model runs that model for the day next to the default's runs, and re-running the same conf
re-runs its own runs: a finished one is reset (its tasks write nothing twice), one still queued
or running is left running and waited for (said in the log), never reset under its tasks; an
existing run whose conf differs from the one asked (made by hand) is refused, naming both.

Why per-coin DAG runs and not a mapped task group: see docs/pipeline.md, "Fan-out design".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException
from airflow.timetables.interval import CronDataIntervalTimetable

from crypto_ml.operators.fanout import TriggerDagRunsOperator
from crypto_ml.pipeline.catalog import DEFAULT_MODEL, MAX_HORIZON, MODEL_NAMES
from crypto_ml.pipeline.params import DEFAULT_HORIZON
from crypto_ml.sensors.dag_runs import DagRunsSensor

with DAG(
    dag_id="crypto_ml_master",
    description="Daily: store the new day of prices, run one crypto_ml_coin per coin, summarise",
    # Data intervals: the run of logical date D covers day D and starts when D is over.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["crypto-ml", "pipeline"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "horizon": Param(
            DEFAULT_HORIZON, type="integer", minimum=1, maximum=MAX_HORIZON, description="days to forecast"
        ),
        "model": Param(DEFAULT_MODEL, type="string", enum=list(MODEL_NAMES), description="model name"),
        "coins": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="only these coins (default: every coin with new data)",
        ),
    },
    doc_md=__doc__,
) as dag:

    @task
    def poll_new_data(*, dag_run=None, dag=None) -> dict:
        """Refuse conf keys that are not params; store the day's new prices; list the coins that
        have data for it."""
        from crypto_ml.hooks.database import CryptoDatabaseHook
        from crypto_ml.hooks.market import CryptoMarketHook
        from crypto_ml.markets import MarketConfigError
        from crypto_ml.pipeline.params import TriggerRefused, check_run_conf
        from crypto_ml.pipeline.steps import PipelineInputError, poll

        try:
            check_run_conf(dag_run, dag)
            # The run's run_after is the clock for which candles have closed: a retry after
            # midnight or a clear next week polls the day the first try polled.
            return poll(
                dag_run.logical_date or dag_run.run_after,
                now=dag_run.run_after,
                market=CryptoMarketHook().get_market(),
                url=CryptoDatabaseHook().get_url(),
            )
        except (TriggerRefused, PipelineInputError, MarketConfigError) as exc:  # no retry helps
            raise AirflowFailException(str(exc)) from None

    @task
    def coin_runs(polled: dict, *, params=None) -> list[dict]:
        """One trigger per coin: its run id (which names the model and horizon when they are not
        the defaults) and conf."""
        from crypto_ml.hooks.database import CryptoDatabaseHook
        from crypto_ml.pipeline.params import coin_runs
        from crypto_ml.pipeline.steps import ModelNotTrained, check_model_trained

        coins = polled["coins"]
        if params.get("coins"):
            wanted = set(params["coins"])
            unknown = wanted - set(coins)
            if unknown:
                raise AirflowFailException(  # a wrong request: no retry helps
                    f"coins without data for {polled['history_day']}: {sorted(unknown)}; "
                    f"{len(coins)} coins have data that day"
                )
            coins = [c for c in coins if c in wanted]
        try:  # before any coin run exists: one line, not one failed run per coin
            check_model_trained(
                coins, params["model"], polled["history_day"], url=CryptoDatabaseHook().get_url()
            )
        except ModelNotTrained as exc:
            raise AirflowFailException(str(exc)) from None
        return coin_runs(coins, polled["history_day"], model=params["model"], horizon=params["horizon"])

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summarize(polled: dict, *, params=None) -> dict:
        """The day's forecasts and decisions of this run's model and horizon, from the project DB;
        fails (after logging them) when coins failed to load from the market."""
        import logging

        from crypto_ml.hooks.database import CryptoDatabaseHook
        from crypto_ml.storage.reporting import day_summary

        log = logging.getLogger(__name__)
        summary = day_summary(
            polled["history_day"],
            coins=polled["coins"],
            model=params["model"],
            horizon=params["horizon"],
            url=CryptoDatabaseHook().get_url(),
        )
        summary["history_limits"] = polled.get("history_limits") or {}
        for coin, reason in summary["history_limits"].items():
            log.warning("LIMITED %s: %s", coin, reason)
        if polled.get("failed_coins"):
            raise AirflowFailException(
                f"{len(polled['failed_coins'])} coin(s) failed to load from the market, the others "
                "went on: " + "; ".join(polled["failed_coins"].values())
            )
        return summary

    polled = poll_new_data()
    runs = coin_runs(polled)
    run_coin = TriggerDagRunsOperator(
        task_id="run_coin_pipelines",
        trigger_dag_id="crypto_ml_coin",
        runs=runs,
        reset_dag_run=True,  # a re-run re-runs the day's finished coin runs (nothing written twice)
    )
    wait = DagRunsSensor(
        task_id="wait_for_coin_runs",
        watched_dag_id="crypto_ml_coin",
        run_ids=runs,
        trigger_rule=TriggerRule.ALL_DONE,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def check_all_coins(*, ti=None) -> None:
        """Green when every task upstream succeeded; fails the run naming those that did not."""
        from crypto_ml.pipeline.steps import failed_upstream

        failed = failed_upstream(ti)
        if failed:
            raise AirflowFailException(
                f"{', '.join(failed)} of this run failed (a coin pipeline, the poll or the fan-out): "
                "see the grid; the summary ran anyway"
            )

    summary = summarize(polled)
    run_coin >> wait >> summary
    [polled, runs, run_coin, wait, summary] >> check_all_coins()
