"""Run the whole pipeline on one machine with the embedded default: no external server.

Airflow (SQLite metadata DB, LocalExecutor: api-server, scheduler, dag-processor, triggerer) and
one prediction-engine worker (``celery -A crypto_ml worker`` on the embedded SQLite broker),
supervised as :mod:`crypto_ml.stack.supervisor` describes, driven and followed through the REST API
(:mod:`crypto_ml.stack.follow`) like the Celery stack.

This is the main job of the README and docs/getting-started.md (``crypto-ml pipeline``); production
runs the same DAGs on CeleryExecutor workers (``airflow.cfg``; on one machine:
:mod:`crypto_ml.stack.celery`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crypto_ml.settings.paths import airflow_home, home_dir, project_env
from crypto_ml.stack.base import AirflowStack
from crypto_ml.stack.follow import MASTER, follow_master, polled_of, print_day_report
from crypto_ml.stack.supervisor import find_bin

#: Connect arguments of Airflow's SQLite metadata DB in the local stack (through
#: ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS``): wait up to a minute for SQLite's write lock
#: instead of failing with "database is locked" after the default 5 s when many task processes
#: write at once (seen here: the dag-processor died of it during a run over every coin).
SQLITE_CONNECT_ARGS = {"timeout": 60}
#: Task processes at once. Our task processes spend most of their life waiting on the api-server,
#: so more than the cores help: the 89-coin day took 59.4 s at 8 (queue wait p50 5.7 s, 1.1 of
#: 2 cores busy) and 52.3 s at 16 (2.3 s, 1.2 cores; benchmarks/bench_orchestration.py).
LOCAL_PARALLELISM = 16
#: Connections the api-server (and each Airflow process) may hold open at once beyond the pool
#: of 5 (``AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW``; Airflow's default is 10). The api-server
#: serves every task process's execution-API calls from one process and up to 40 threads; with 15
#: connections, a request that waits on SQLite's write lock holds one, and under the no-op floor's
#: load (16 task processes and 64 coin runs with no work) requests waited 30 s for a connection and
#: failed (QueuePool TimeoutError: three coin runs failed). 40 lets every thread have one.
SQLITE_MAX_OVERFLOW = 35
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def local_secrets(home: Path) -> dict[str, str]:
    """Secrets every Airflow process of this local stack must share (JWT, API, Fernet), generated
    once per Airflow home into ``<home>/local-secrets.json`` (mode 0600, never in the repo)."""
    path = home / "local-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    secrets = {
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(64)).decode(),
        "AIRFLOW__API__SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(secrets, fh)
    return secrets


@dataclass
class LocalStack(AirflowStack):
    """The processes of the local stack; use as a context manager."""

    engine_concurrency: int = 2

    def __post_init__(self) -> None:
        if self.log_dir is None:
            self.log_dir = airflow_home() / "logs" / "local-stack"

    def env(self) -> dict[str, str]:
        home = airflow_home()
        env = dict(os.environ)
        env.update(local_secrets(home))
        env.update(project_env())
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(LOCAL_PARALLELISM),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "crypto_ml.stack.local.SQLITE_CONNECT_ARGS",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": str(SQLITE_MAX_OVERFLOW),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                # Local first try only: the development auth manager, everyone admin, on 127.0.0.1
                # (airflow.cfg carries production's FAB auth manager and CeleryExecutor). The REST
                # client takes its token from GET /auth/token (no credentials in this mode).
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "CRYPTO_ML_HOME": str(home_dir()),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def prepare(self, env: dict[str, str]) -> None:
        """One-off set-up before the long-running processes start (the metadata DB schema)."""
        import subprocess

        subprocess.run(
            [find_bin("airflow"), "db", "migrate"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def commands(self) -> dict[str, list[str]]:
        """Process name -> command line of every long-running process of the stack."""
        return {
            "engine-worker": [
                find_bin("celery"),
                "-A",
                "crypto_ml",
                "worker",
                "-Q",
                "predict,train,heavy",
                "-c",
                str(self.engine_concurrency),
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                "engine-local@%h",
            ],
            "api-server": [find_bin("airflow"), "api-server", "--port", str(self.port)],
            "scheduler": [find_bin("airflow"), "scheduler"],
            "dag-processor": [find_bin("airflow"), "dag-processor"],
            "triggerer": [find_bin("airflow"), "triggerer"],
        }


def master_run(stack: AirflowStack, say, wait: float = 20) -> str:
    """The master run the scheduler creates on unpause (today's interval), else a manual trigger;
    its run id."""
    client = stack.client
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        runs = client.dag_runs(MASTER, order_by="-id")
        active = [r for r in runs if r["state"] in ("queued", "running")]
        if active:
            say(f"[pipeline] the scheduler started {MASTER} run {active[0]['dag_run_id']}")
            return active[0]["dag_run_id"]
        if runs:
            break
        time.sleep(1)
    say(f"[pipeline] airflow dags trigger {MASTER}")
    return client.trigger(MASTER)


def run_pipeline(
    *, port: int = 8080, keep_running: bool = False, timeout: float = 1800, out=sys.stdout
) -> int:
    """Start the local stack, run the master DAG once, print the summary and a plot; stop."""

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    stack = LocalStack(port=port)
    say(
        f"[pipeline] starting Airflow (LocalExecutor, SQLite in {airflow_home()}) and an engine worker;"
        f" logs in {stack.log_dir}"
    )
    started = time.monotonic()
    with stack:
        say(f"[pipeline] Airflow UI: {stack.base_url}  (up in {time.monotonic() - started:.0f} s)")
        stack.unpause_pipeline()
        run_id = master_run(stack, say)
        state = follow_master(stack.client, run_id, say, prefix="[pipeline]", timeout=timeout)
        polled = polled_of(stack.client, run_id)
        if polled is None:
            say("[pipeline] no data was polled; nothing to summarize")
        else:
            print_day_report(polled, say)
        if keep_running:
            say(f"[pipeline] stack left running: {stack.base_url}  (Ctrl-C stops it)")
            stack.run_until_interrupted()
        say("[pipeline] stopping Airflow and the engine worker")
    return 0 if state == "success" else 1
