"""Fixtures of the engine tests: real brokers and real ``celery -A crypto_ml worker`` processes.

- ``embedded``: kombu's SQLAlchemy transport on a SQLite file + ``db+sqlite`` results (no server).
- ``redis``: ``redis://127.0.0.1:6379/15`` with a key prefix unique per test (only those keys are
  deleted afterwards). Override the server with ``CRYPTO_ML_TEST_REDIS_URL``.
- ``rabbitmq``: ``amqp://guest:guest@127.0.0.1:5672/<vhost>`` with a vhost created per test by
  ``rabbitmqctl`` (deleted afterwards); results in a SQLite file.

An unreachable Redis/RabbitMQ skips its tests, but fails them when ``CI=true``.

Each worker runs in its own process group (``start_new_session``) and the whole group is killed
on teardown. Readiness: the worker's ``ready.`` log line, then ``inspect ping`` where the transport
supports broadcast (Redis, AMQP); kombu's SQLAlchemy transport has no fanout, so there the
fixture sends a real task round trip instead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
REDIS_URL = os.environ.get("CRYPTO_ML_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672


def _unavailable(message: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@dataclass
class Broker:
    kind: str
    broker_url: str
    result_backend: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def supports_broadcast(self) -> bool:
        return self.kind != "embedded"


def _redis_broker(tmp_path) -> Broker:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"Redis not reachable at {REDIS_URL}: {exc}; start it or set CRYPTO_ML_TEST_REDIS_URL")
    prefix = f"crypto_ml_test_{os.getpid()}_{secrets.token_hex(4)}:"
    broker = Broker("redis", REDIS_URL, REDIS_URL, {"CRYPTO_ML_ENGINE_KEY_PREFIX": prefix})
    broker._cleanup = lambda: [client.delete(k) for k in client.scan_iter(match=f"{prefix}*", count=500)]
    return broker


def _rabbitmq_broker(tmp_path) -> Broker:
    if not _port_open(AMQP_HOST, AMQP_PORT):
        _unavailable(f"RabbitMQ not reachable at {AMQP_HOST}:{AMQP_PORT}")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        _unavailable("RabbitMQ is up but rabbitmqctl is not on PATH (needed to create a vhost per test)")
    vhost = f"crypto_ml_test_{os.getpid()}_{secrets.token_hex(4)}"
    for cmd in (["add_vhost", vhost], ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]):
        proc = subprocess.run([ctl, *cmd], capture_output=True, text=True, timeout=60)
        if proc.returncode:
            _unavailable(f"RabbitMQ: rabbitmqctl {' '.join(cmd)} failed: {proc.stderr.strip()[:300]}")
    broker = Broker(
        "rabbitmq",
        f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}",
        f"db+sqlite:///{tmp_path / 'engine-results.db'}",
    )
    broker._cleanup = lambda: subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)
    return broker


def make_broker(kind: str, tmp_path) -> Broker:
    if kind == "embedded":
        broker = Broker(
            "embedded",
            f"sqla+sqlite:///{tmp_path / 'engine-broker.db'}",
            f"db+sqlite:///{tmp_path / 'engine-results.db'}",
        )
        broker._cleanup = lambda: None
        return broker
    if kind == "redis":
        return _redis_broker(tmp_path)
    if kind == "rabbitmq":
        return _rabbitmq_broker(tmp_path)
    raise ValueError(kind)


@pytest.fixture(params=["embedded", "redis", "rabbitmq"])
def broker(request, tmp_path):
    """Each broker kind in turn."""
    b = make_broker(request.param, tmp_path)
    yield b
    b._cleanup()


@pytest.fixture(params=["embedded", "redis", "rabbitmq"])
def fault_broker(request, tmp_path):
    b = make_broker(request.param, tmp_path)
    yield b
    b._cleanup()


@pytest.fixture
def embedded_broker(tmp_path):
    return make_broker("embedded", tmp_path)


@pytest.fixture
def engine_env(tmp_path) -> dict[str, str]:
    """Per-test homes and project database, shared by the test process and its workers."""
    from crypto_ml.storage import migrate

    home = tmp_path / "home"
    home.mkdir()
    db_url = f"sqlite:///{tmp_path / 'crypto_ml.db'}"
    migrate(db_url)
    return {
        "CRYPTO_ML_HOME": str(home),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "CRYPTO_ML_DATABASE_URL": db_url,
    }


class Worker:
    """A running ``celery -A crypto_ml worker`` process group and a client app for its broker."""

    def __init__(
        self,
        broker: Broker,
        env: dict[str, str],
        tmp_path: Path,
        *,
        queues: str,
        concurrency: int,
        pool: str,
        extra_env: dict[str, str] | None,
    ) -> None:
        from crypto_ml.engine.app import make_app
        from crypto_ml.settings.engine import EngineConfig

        self.broker = broker
        self.hostname = f"engine-{secrets.token_hex(4)}@%h"
        self.log_path = tmp_path / f"worker-{secrets.token_hex(2)}.log"
        self.env = {
            **os.environ,
            **env,
            **broker.env,
            "CRYPTO_ML_BROKER_URL": broker.broker_url,
            "CRYPTO_ML_RESULT_BACKEND": broker.result_backend,
            "CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT": "15",
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CRYPTO_ML_TF_THREADS": "1",
            **(extra_env or {}),
        }
        self.config = EngineConfig.from_env(self.env)
        self.app = make_app(self.config)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "crypto_ml",
                "worker",
                "-Q",
                queues,
                "--pool",
                pool,
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                self.hostname,
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.node = self.hostname.replace("%h", socket.gethostname())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if not self.alive():
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready after {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        if self.broker.supports_broadcast:
            while True:
                replies = self.app.control.inspect([self.node], timeout=1.0).ping() or {}
                if self.node in replies:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker {self.node} did not answer inspect ping")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the whole group, pool children included
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self._log.close()
        try:
            self.app.close()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def start_worker(engine_env, tmp_path):
    """``start_worker(broker, queues="predict,train", concurrency=2, pool="prefork", env=None)``."""
    workers: list[Worker] = []

    def start(
        broker: Broker,
        *,
        queues: str = "predict,train",
        concurrency: int = 2,
        pool: str = "prefork",
        env: dict[str, str] | None = None,
    ) -> Worker:
        worker = Worker(
            broker, engine_env, tmp_path, queues=queues, concurrency=concurrency, pool=pool, extra_env=env
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
