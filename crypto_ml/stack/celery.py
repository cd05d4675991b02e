"""The production shape on one machine: Airflow on CeleryExecutor, horizontally scaled workers.

Supervised as :mod:`crypto_ml.stack.supervisor` describes; driven and followed through the REST
API with :mod:`crypto_ml.stack.follow`, like the embedded stack.

Processes (each in its own process group, stopped as a group):

- Airflow: ``api-server`` (REST API and UI, FAB auth manager), ``scheduler``, ``dag-processor``,
  ``triggerer`` and ``airflow-worker-1..N`` (``airflow celery worker`` on the queue ``default``),
  with PostgreSQL as the metadata DB and Redis as the Celery broker;
- the prediction engine: ``engine-1..M`` (``celery -A crypto_ml worker``, queues predict/train)
  on Redis, and ``flower`` watching it (HTTP basic auth);
- the project's data (prices, predictions, trades) in its own PostgreSQL database.

Servers are taken as given (PostgreSQL and Redis; both run on 127.0.0.1 on this machine kind);
the two databases are created when missing. Secrets come from the environment only (see
:data:`REQUIRED_SECRETS`; ``crypto-ml stack secrets`` prints fresh ones): nothing has a default
password. The real auth manager (Flask-AppBuilder) guards the UI and the REST API; the admin
user is created from ``CRYPTO_ML_ADMIN_PASSWORD``.

Each worker gets its own host name (``CRYPTO_ML_HOSTNAME`` through ``[core] hostname_callable``)
so task instances say which worker ran them, as they would across machines. Task logs are
written to the shared ``$AIRFLOW_HOME/logs`` (one machine), so the workers do not serve logs.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto_ml.settings.paths import airflow_home, project_env
from crypto_ml.stack.base import AirflowStack
from crypto_ml.stack.follow import MASTER, follow_master, polled_of, print_day_report
from crypto_ml.stack.supervisor import find_bin

#: Environment variables the stack needs and never defaults.
REQUIRED_SECRETS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "CRYPTO_ML_ADMIN_PASSWORD",
)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
AIRFLOW_QUEUE = "default"


class StackConfigError(RuntimeError):
    """The stack cannot start as configured (a missing secret, an unreachable server)."""


def generate_secrets() -> dict[str, str]:
    """Fresh random values for :data:`REQUIRED_SECRETS`."""
    from cryptography.fernet import Fernet

    return {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(64)).decode(),
        "AIRFLOW__API__SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CRYPTO_ML_ADMIN_PASSWORD": base64.urlsafe_b64encode(os.urandom(18)).decode(),
    }


def _sqlalchemy_url(server_url: str, database: str, driver: str = "postgresql+psycopg2") -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


def ensure_database(server_url: str, database: str) -> None:
    """Create PostgreSQL database ``database`` on the server of ``server_url`` when missing."""
    from sqlalchemy import create_engine, text

    engine = create_engine(
        _sqlalchemy_url(server_url, "postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": database}
            ).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
    except Exception as exc:  # noqa: BLE001 - report which server and why, whatever the driver says
        raise StackConfigError(
            f"PostgreSQL at {_sqlalchemy_url(server_url, 'postgres')} is not usable: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from exc
    finally:
        engine.dispose()


def drop_database(server_url: str, database: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(_sqlalchemy_url(server_url, "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        engine.dispose()


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except Exception as exc:  # noqa: BLE001
        raise StackConfigError(f"Redis at {url} is not reachable: {exc}") from exc


@dataclass
class CeleryStack(AirflowStack):
    """The CeleryExecutor stack (see the module docstring); a context manager like LocalStack.

    The REST API (:attr:`client`) takes the admin's user name and password for its token.

    :param pg_url: the PostgreSQL server (any database in the URL is replaced).
    :param redis_url: the Redis server and database number of both brokers.
    :param name: prefix of the two databases (``<name>_airflow``, ``<name>``) and of every Redis
        key (``<name>:af:``, ``<name>:engine:``), so several stacks can share the servers.
    :param airflow_workers: ``airflow celery worker`` processes; ``airflow_concurrency`` task
        slots each.
    :param engine_workers: engine worker processes; ``engine_concurrency`` pool processes each.
    :param scheduled: ``False`` runs only what is triggered (no cron runs): tests, benchmarks.
    :param home: ``AIRFLOW_HOME`` of every process (default: this process's).
    :param settings: extra ``AIRFLOW__...``/``CRYPTO_ML_...`` settings for every process.
    :param process_settings: extra settings per process name (e.g. ``{"engine-1": {...}}``).
    """

    pg_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis_url: str = "redis://127.0.0.1:6379/0"
    name: str = "crypto_ml"
    airflow_workers: int = 2
    airflow_concurrency: int = 16
    engine_workers: int = 2
    engine_concurrency: int = 1
    flower_port: int = 5555
    scheduled: bool = True
    admin_user: str = "admin"
    home: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    process_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    healthy_components: tuple[str, ...] = ("metadatabase", "scheduler")

    def __post_init__(self) -> None:
        self.home = Path(self.home) if self.home is not None else airflow_home()
        self.log_dir = self.home / "logs" / "celery-stack"
        if self.airflow_workers < 1 or self.engine_workers < 1:
            raise ValueError("the stack needs at least one Airflow worker and one engine worker")

    # -- configuration -------------------------------------------------------------------------
    @property
    def airflow_db(self) -> str:
        return f"{self.name}_airflow"

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.flower_port}"

    @property
    def crypto_db_url(self) -> str:
        return _sqlalchemy_url(self.pg_url, self.name)

    @property
    def admin_password(self) -> str:
        return os.environ["CRYPTO_ML_ADMIN_PASSWORD"]

    def credentials(self) -> tuple[str, str]:
        """The admin's user name and password: the REST API's token is issued for them."""
        return self.admin_user, self.admin_password

    def env(self) -> dict[str, str]:
        missing = [k for k in REQUIRED_SECRETS if not os.environ.get(k)]
        if missing:
            raise StackConfigError(
                f"the Celery stack takes its secrets from the environment; missing: {', '.join(missing)}. "
                'For a try on this machine: eval "$(crypto-ml stack secrets)"'
            )
        home = self.home
        env = dict(os.environ)
        env.update(project_env())
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "crypto_ml.settings.paths.hostname",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(self.pg_url, self.airflow_db),
                "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{self.name}:af:",
                "AIRFLOW__CELERY__RESULT_BACKEND": _sqlalchemy_url(
                    self.pg_url, self.airflow_db, "db+postgresql+psycopg2"
                ),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.airflow_concurrency),
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": AIRFLOW_QUEUE,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.scheduled),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                # The prediction engine and the project DB, for the engine and for Airflow's hooks.
                "CRYPTO_ML_BROKER_URL": self.redis_url,
                "CRYPTO_ML_RESULT_BACKEND": self.redis_url,
                "CRYPTO_ML_ENGINE_KEY_PREFIX": f"{self.name}:engine:",
                "CRYPTO_ML_DATABASE_URL": self.crypto_db_url,
                # Trained models in the project database: every host sees them, nothing to mount.
                "CRYPTO_ML_MODEL_STORE_URL": "database",
                "CRYPTO_ML_HOME": os.environ.get("CRYPTO_ML_HOME") or str(home / "crypto_ml"),
                "FLOWER_BASIC_AUTH": f"{self.admin_user}:{os.environ['CRYPTO_ML_ADMIN_PASSWORD']}",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        env.update(self.settings)
        return env

    def process_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        own = dict(env)
        if name.startswith(("airflow-worker-", "engine-")):
            own["CRYPTO_ML_HOSTNAME"] = name
        own.update(self.process_settings.get(name, {}))
        return own

    # -- processes -----------------------------------------------------------------------------
    def prepare(self, env: dict[str, str]) -> None:
        check_redis(self.redis_url)
        ensure_database(self.pg_url, self.airflow_db)
        ensure_database(self.pg_url, self.name)
        for step, cmd in (
            ("airflow db migrate", [find_bin("airflow"), "db", "migrate"]),
            ("admin user", [sys.executable, "-m", "crypto_ml.stack.celery", "create-admin", self.admin_user]),
        ):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode:
                raise StackConfigError(
                    f"{step} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
                )

    def commands(self) -> dict[str, list[str]]:
        airflow, celery = find_bin("airflow"), find_bin("celery")
        cmds = {
            "api-server": [airflow, "api-server", "--port", str(self.port)],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer"],
        }
        for i in range(1, self.airflow_workers + 1):
            cmds[f"airflow-worker-{i}"] = [
                airflow,
                "celery",
                "worker",
                "--queues",
                AIRFLOW_QUEUE,
                "--concurrency",
                str(self.airflow_concurrency),
                "--celery-hostname",
                f"airflow-worker-{i}@%h",
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ]
        for i in range(1, self.engine_workers + 1):
            cmds[f"engine-{i}"] = [
                celery,
                "-A",
                "crypto_ml",
                "worker",
                "-Q",
                "predict,train,heavy",
                "-c",
                str(self.engine_concurrency),
                "-l",
                "INFO",
                "-n",
                f"engine-{i}@%h",
                "--without-mingle",
                "--without-gossip",
            ]
        cmds["flower"] = [
            celery,
            "-A",
            "crypto_ml",
            "flower",
            "--address=127.0.0.1",
            f"--port={self.flower_port}",
        ]
        return cmds

    def wait_healthy(self, timeout: float = 240) -> None:
        """Until the metadata DB and the scheduler report healthy."""
        super().wait_healthy(timeout)

    def destroy(self) -> None:
        """Remove what the stack stored on the servers: both databases and every Redis key under
        its prefix (for throw-away stacks: tests, benchmarks). Call it after the stack stopped."""
        import redis

        drop_database(self.pg_url, self.airflow_db)
        drop_database(self.pg_url, self.name)
        client = redis.Redis.from_url(self.redis_url)
        for key in client.scan_iter(f"{self.name}:*"):
            client.delete(key)

    def flower(self, path: str, **params: Any) -> dict:
        """One GET of Flower's API (basic auth), e.g. ``flower("/api/workers", refresh="true")``."""
        from crypto_ml.utils.http import retrying_session

        with retrying_session(timeout=30, methods=("GET",)) as session:
            resp = session.get(
                f"{self.flower_url}{path}", params=params, auth=(self.admin_user, self.admin_password)
            )
            resp.raise_for_status()
            return resp.json()

    def flower_tasks(self) -> dict[str, dict]:
        """The engine's tasks as Flower saw them (``/api/tasks``): uuid -> task, with its ``name``,
        ``state`` and ``worker`` (e.g. ``engine-1@host``)."""
        return self.flower("/api/tasks", limit=100000)


def run_on_stack(
    stack: CeleryStack,
    *,
    logical_date: str,
    conf: dict | None = None,
    keep_running: bool = False,
    timeout: float = 1800,
    out=sys.stdout,
) -> int:
    """Start ``stack``, trigger ``crypto_ml_master`` through the REST API, follow it, print the
    day's forecasts and a plot, stop. The exit code: 0 when the master run succeeded."""

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    say(
        f"[stack] starting Airflow (CeleryExecutor: {stack.airflow_workers} workers x "
        f"{stack.airflow_concurrency} slots; PostgreSQL database {stack.airflow_db}; "
        f"Redis {stack.redis_url}) "
        f"and {stack.engine_workers} engine workers; logs in {stack.log_dir}"
    )
    started = time.monotonic()
    with stack:
        say(
            f"[stack] up in {time.monotonic() - started:.0f} s. Airflow UI and REST API: {stack.base_url} "
            f"(user {stack.admin_user}, password from CRYPTO_ML_ADMIN_PASSWORD); Flower: {stack.flower_url}"
        )
        run_id = stack.trigger_master(logical_date, conf)
        say(f"[stack] triggered {MASTER} run {run_id} through the REST API")
        t0 = time.monotonic()
        state = follow_master(stack.client, run_id, say, prefix="[stack]", timeout=timeout)
        say(f"[stack] {MASTER} run {run_id}: {state} in {time.monotonic() - t0:.1f} s")
        polled = polled_of(stack.client, run_id)
        if polled is None:
            say("[stack] no data was polled; nothing to summarize")
        else:
            print_day_report(polled, say, url=stack.crypto_db_url, coins=(conf or {}).get("coins"), conf=conf)
        if keep_running:
            say(f"[stack] left running: {stack.base_url}  (Ctrl-C stops it)")
            stack.run_until_interrupted()
        say("[stack] stopping every process of the stack")
    return 0 if state == "success" else 1


def day_of(logical_date: str) -> str:
    """The market day of a master run's logical date (``YYYY-MM-DD...``): the replayed history
    day for the replay (see :meth:`crypto_ml.markets.MarketConfig.market_day`)."""
    import datetime as dt

    from crypto_ml.markets import env_market

    return str(env_market().market_day(dt.date.fromisoformat(logical_date[:10])))


def create_admin(username: str) -> None:
    """Create the FAB admin ``username`` with the password in ``CRYPTO_ML_ADMIN_PASSWORD`` (read
    from the environment, so it is never on a command line); keep an existing user as it is."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    password = os.environ.get("CRYPTO_ML_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("CRYPTO_ML_ADMIN_PASSWORD is not set")
    with get_application_builder() as appbuilder:
        if appbuilder.sm.find_user(username):
            return
        role = appbuilder.sm.find_role("Admin")
        if not appbuilder.sm.add_user(
            username, "Crypto-ML", "Admin", f"{username}@localhost", role, password
        ):
            raise SystemExit(f"could not create the admin user {username!r}")


if __name__ == "__main__":  # python -m crypto_ml.stack.celery create-admin <user>
    if sys.argv[1:2] == ["create-admin"] and len(sys.argv) == 3:
        create_admin(sys.argv[2])
    else:
        raise SystemExit("usage: python -m crypto_ml.stack.celery create-admin <username>")
