"""
### crypto_ml_ingest

Daily ingest of new prices into the project database (not Airflow's metadata DB).

Each run replays one day of the bundled history (the source of the pipeline's first try, no
network): the run's logical date is mapped onto the history with
`CRYPTO_ML_REPLAY_ANCHOR_REAL` ↦ `CRYPTO_ML_REPLAY_ANCHOR_HISTORY` (default 2026-11-01 ↦
2017-06-01), and the rows of that history day are validated and upserted. Clearing and re-running
a run writes nothing twice; a backfill over past dates replays exactly those days.

The logic lives in `crypto_ml.ingest`; this file only wires it into a schedule.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="crypto_ml_ingest",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["crypto-ml", "data"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=1)},
    doc_md=__doc__,
)
def crypto_ml_ingest():
    @task
    def ingest_replayed_day(*, logical_date=None) -> dict:
        """Validate and upsert the replayed history day of this run; returns what was stored."""
        from crypto_ml.ingest import ingest_replay_day

        return ingest_replay_day(logical_date)

    ingest_replayed_day()


crypto_ml_ingest()
