"""Our operators in a DAG of a data engineer's own (tests/operators/dags/two_coins_elsewhere.py):
other coins, a second project database (a fresh PostgreSQL database, Connection ``research_db``)
and a second engine (Redis db 14 with its own key prefix, Connection ``research_engine``, served by
a real engine worker), mixed with standard operators, run with ``dag.test()``. The rows land in
the second database; the default database and engine (the environment's) are never touched."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from crypto_ml import storage

BIN = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"
REDIS = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0] + "/14"

RUN = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
run = DagBag(dag_folder=sys.argv[1]).dags["two_coins_elsewhere"].test()
print("RESULT=" + json.dumps({"state": str(run.state),
      "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}))
"""


@pytest.fixture
def redis_prefix():
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis not reachable at {REDIS}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS}: {exc}")
    prefix = f"crypto_ml_ops_{os.getpid()}_{secrets.token_hex(3)}:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


def test_a_dag_of_our_operators_on_a_second_database_and_engine(pg_url, redis_prefix, tmp_path):
    default_db = tmp_path / "default.db"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "CRYPTO_ML_HOME": str(tmp_path / "home"),
           "PATH": f"{BIN}:{os.environ['PATH']}", "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           # The defaults, which this DAG must not use: a SQLite project DB, an engine nobody serves.
           "CRYPTO_ML_DATABASE_URL": f"sqlite:///{default_db}",
           "CRYPTO_ML_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'nobody.db'}",
           "CRYPTO_ML_RESULT_BACKEND": f"db+sqlite:///{tmp_path / 'nobody-results.db'}"}
    engine_extra = f"broker_url={quote(REDIS, safe='')}&result_backend={quote(REDIS, safe='')}&key_prefix={quote(redis_prefix)}"
    env["AIRFLOW_CONN_RESEARCH_DB"] = pg_url.replace("postgresql+psycopg2://", "postgresql://")
    env["AIRFLOW_CONN_RESEARCH_ENGINE"] = f"crypto-ml-engine://?{engine_extra}"
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    worker_env = {**env, "CRYPTO_ML_BROKER_URL": REDIS, "CRYPTO_ML_RESULT_BACKEND": REDIS,
                  "CRYPTO_ML_ENGINE_KEY_PREFIX": redis_prefix, "CRYPTO_ML_DATABASE_URL": pg_url}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "crypto_ml", "worker", "-Q", "predict", "-c", "1", "--without-gossip",
         "--without-mingle", "-l", "INFO", "-n", f"research-{os.getpid()}@%h"],
        env=worker_env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        out = subprocess.run([sys.executable, "-c", RUN, str(DAGS)], env=env, capture_output=True, text=True,
                             timeout=600)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, out.stdout[-4000:] + out.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT="):])
    assert result["state"] == "success", (result, out.stdout[-4000:] + out.stderr[-4000:])
    assert result["tasks"]["count"] == "success" and result["tasks"]["start"] == "success"
    for coin in ("litecoin", "ethereum"):
        [pred] = storage.get_predictions(coin=coin, as_of="2017-06-05", url=pg_url)
        assert pred["model"] == "drift" and pred["decision"] in ("store", "trade")
        assert {result["tasks"][f"{coin}.store"], result["tasks"][f"{coin}.trade"]} == {"success", "skipped"}
    storage.dispose_engine(pg_url)
    # The default project database was never written (not even created).
    assert not default_db.exists() or storage.get_predictions(url=f"sqlite:///{default_db}") == []
    assert f"research-{os.getpid()}" in log.read_text() and "crypto_ml.predict" in log.read_text()
