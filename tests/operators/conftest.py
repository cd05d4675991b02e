"""A real Airflow home, a fresh PostgreSQL project database and a real engine worker on Redis, for
DAGs of our operators as a data engineer writes them (``tests/operators/dags/``).

DAG runs go through ``dag.test()`` in a subprocess (Airflow's own in-process runner: real task
instances, XComs, deferral through the real trigger, branching), against a real
``celery -A crypto_ml worker`` process. The Airflow home is migrated once per module; each test
gets its own project database, Redis key prefix and worker.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
DAGS = Path(__file__).parent / "dags"
REDIS = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0] + "/14"

RUN_DAG = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
    print("RESULT=" + json.dumps({"error": f"import errors: {bag.import_errors}"}))
    raise SystemExit(0)
run = bag.dags[sys.argv[2]].test()
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, key="return_value").all()
    returns = {row.task_id: XComModel.deserialize_value(row) for row in rows}
print("RESULT=" + json.dumps({"state": str(run.state), "run_id": run.run_id, "returns": returns,
      "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()}}, default=str))
"""


def _unavailable(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """The environment of the module's Airflow home (migrated once), reading ``tests/operators/dags``."""
    base = tmp_path_factory.mktemp("operators")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(base / "airflow"),
        "CRYPTO_ML_HOME": str(base / "home"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    return env


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis not reachable at {REDIS}: {exc}")
    prefix = f"crypto_ml_ops_{os.getpid()}_{secrets.token_hex(3)}:"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        client.delete(key)


class EngineWorker:
    """A ``celery -A crypto_ml worker`` on the ``predict`` queue, in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - the worker writes it until stop()
        self.proc = subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "crypto_ml",
                "worker",
                "-Q",
                "predict",
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
                "-n",
                f"{name}@%h",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while "ready." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"engine worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_engine_worker(tmp_path):
    """``start_engine_worker(env, name)``: a ready :class:`EngineWorker`, stopped after the test."""
    workers: list[EngineWorker] = []

    def start(env: dict[str, str], name: str) -> EngineWorker:
        workers.append(EngineWorker(env, tmp_path / f"{name}.log", f"{name}-{os.getpid()}"))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()


def run_dag(env: dict[str, str], dag_id: str) -> dict:
    """``dag.test()`` of ``tests/operators/dags``' ``dag_id`` in a subprocess:
    ``{"state", "run_id", "tasks": {task_id: state}, "returns": {task_id: XCom}, "log"}``."""
    out = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(DAGS), dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT=")]
    assert lines, f"no result from dag.test:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    result = json.loads(lines[-1][len("RESULT=") :])
    result["log"] = out.stdout + out.stderr
    assert "error" not in result, result["error"]
    return result


@dataclass
class Deployment:
    """The project database and engine of the environment, and a ``run(dag_id, **extra_env)`` of
    its DAGs."""

    url: str
    env: dict[str, str]
    worker: EngineWorker
    run: Callable[..., dict]


@pytest.fixture
def deployment(airflow_env, pg_url, redis_prefix, start_engine_worker) -> Deployment:
    """The deployment a DAG with the default Connections runs on: the project database (a fresh
    PostgreSQL database, ``CRYPTO_ML_DATABASE_URL``) and the engine (Redis db 14 under a key prefix
    of its own, ``CRYPTO_ML_BROKER_URL``...), served by a real engine worker."""
    from crypto_ml.storage import migrate

    migrate(pg_url)
    env = {
        **airflow_env,
        "CRYPTO_ML_DATABASE_URL": pg_url,
        "CRYPTO_ML_BROKER_URL": REDIS,
        "CRYPTO_ML_RESULT_BACKEND": REDIS,
        "CRYPTO_ML_ENGINE_KEY_PREFIX": redis_prefix,
    }
    worker = start_engine_worker(env, "ops")
    return Deployment(
        url=pg_url,
        env=env,
        worker=worker,
        run=lambda dag_id, **extra_env: run_dag({**env, **extra_env}, dag_id),
    )
