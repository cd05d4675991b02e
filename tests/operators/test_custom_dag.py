"""The README's DAG of a data engineer's own (tests/operators/dags/two_coins_elsewhere.py): other
coins, a second project database (a fresh PostgreSQL database, Connection ``research_db``) and a
second engine (Redis db 14 with its own key prefix, Connection ``research_engine``, served by a real
engine worker), mixed with standard operators, run twice with ``dag.test()``. The rows land in the
second database, once; the default database and engine (the environment's) are never touched. And
the README's code builds this DAG."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from crypto_ml import storage

from .conftest import DAGS, REDIS, run_dag

README = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"  # the docs page of the example
DAY = "2017-06-05"


@pytest.mark.postgres
def test_the_readme_dag_on_a_second_database_and_engine(
    airflow_env, pg_url, redis_prefix, start_engine_worker, tmp_path
):
    default_db = tmp_path / "default.db"
    env = {
        **airflow_env,
        # The defaults, which this DAG must not use: a SQLite project DB, an engine nobody serves.
        "CRYPTO_ML_DATABASE_URL": f"sqlite:///{default_db}",
        "CRYPTO_ML_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'nobody.db'}",
        "CRYPTO_ML_RESULT_BACKEND": f"db+sqlite:///{tmp_path / 'nobody-results.db'}",
    }
    engine_extra = (
        f"broker_url={quote(REDIS, safe='')}&result_backend={quote(REDIS, safe='')}"
        f"&key_prefix={quote(redis_prefix)}"
    )
    env["AIRFLOW_CONN_RESEARCH_DB"] = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    env["AIRFLOW_CONN_RESEARCH_ENGINE"] = f"crypto-ml-engine://?{engine_extra}"
    worker_env = {
        **env,
        "CRYPTO_ML_BROKER_URL": REDIS,
        "CRYPTO_ML_RESULT_BACKEND": REDIS,
        "CRYPTO_ML_ENGINE_KEY_PREFIX": redis_prefix,
        "CRYPTO_ML_DATABASE_URL": pg_url,
    }
    worker = start_engine_worker(worker_env, "research")
    runs = []
    for _ in range(2):
        result = run_dag(env, "two_coins_elsewhere")
        assert result["state"] == "success", (result["tasks"], result["log"][-6000:])
        assert result["tasks"]["count"] == "success" and result["tasks"]["start"] == "success"
        assert result["returns"]["count"] == 2
        rows = {row["coin"]: row for row in storage.get_predictions(as_of=DAY, url=pg_url)}
        assert sorted(rows) == ["ethereum", "litecoin"] and len(storage.get_predictions(url=pg_url)) == 2
        for coin, row in rows.items():
            assert row["model"] == "drift" and row["decision"] in ("store", "trade")
            ran, skipped = (
                (f"{coin}.trade", f"{coin}.store")
                if row["decision"] == "trade"
                else (f"{coin}.store", f"{coin}.trade")
            )
            assert (result["tasks"][ran], result["tasks"][skipped]) == ("success", "skipped")
        runs.append((result["run_id"], rows, storage.get_trade_requests(url=pg_url)))
    (first_run, first_rows, first_trades), (second_run, second_rows, second_trades) = runs
    assert second_run != first_run
    assert second_rows == first_rows and {r["run_id"] for r in second_rows.values()} == {first_run}
    assert second_trades == first_trades
    # The default project database was never written (not even created).
    assert not default_db.exists() or storage.get_predictions(url=f"sqlite:///{default_db}") == []
    assert "crypto_ml.predict" in worker.log()


def _readme_example() -> str:
    text = README.read_text()
    after = text[text.index("A DAG of your own") :]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def _shape(dag) -> dict:
    """What the DAG does: its tags, and per task its class, upstream tasks, trigger rule, retries
    and template-field values (an XCom argument as the task it pulls from)."""

    def value(v):
        return f"xcom:{v.operator.task_id}" if hasattr(v, "operator") else v

    return {
        "tags": sorted(dag.tags),
        "tasks": {
            task.task_id: (
                type(task).__name__,
                sorted(task.upstream_task_ids),
                str(task.trigger_rule),
                task.retries,
                {f: value(getattr(task, f)) for f in task.template_fields},
            )
            for task in dag.tasks
        },
    }


def test_the_readme_example_builds_the_dag_the_test_runs():
    spec = importlib.util.spec_from_file_location("two_coins_elsewhere", DAGS / "two_coins_elsewhere.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {k: v for k, v in vars(module).items() if k != "dag"}
    exec(compile(_readme_example(), "docs/pipeline.md", "exec"), names)  # noqa: S102 - our own docs' code
    assert _shape(names["start"].dag) == _shape(module.dag)
