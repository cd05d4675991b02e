"""The prediction engine's configuration: one object, built from the environment.

Every setting has an environment override (read by :meth:`EngineConfig.from_env`):

==================================  ==========================================================
``CRYPTO_ML_BROKER_URL``            broker; default ``sqla+sqlite:///<home>/engine-broker.db``
                                    (embedded, no server). Also ``redis://host:6379/N`` and
                                    ``amqp://user:pass@host:5672/vhost``.
``CRYPTO_ML_RESULT_BACKEND``        results; default ``db+sqlite:///<home>/engine-results.db``
                                    (also ``redis://...``, ``db+postgresql://...``).
``CRYPTO_ML_ENGINE_CACHE_SIZE``     fitted models kept warm per worker process (LRU), 128
``CRYPTO_ML_ENGINE_CACHE_MAX_MB``   megabytes of fitted models kept warm per worker process (LRU,
                                    each model's size estimated by
                                    :func:`crypto_ml.engine.cache.model_nbytes`), 768
``CRYPTO_ML_ENGINE_MAX_RETRIES``    retries of transient errors (DB/broker connection), 5
``CRYPTO_ML_ENGINE_RETRY_BACKOFF_MAX``  cap of the exponential retry backoff (s), 60
``CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT`` Redis only: seconds before an unacknowledged message is
                                    redelivered when a whole worker vanished, 3600
``CRYPTO_ML_ENGINE_RESULT_EXPIRES`` seconds results are kept, 86400
``CRYPTO_ML_ENGINE_MAX_HORIZON``    largest accepted horizon (days), 365
``CRYPTO_ML_ENGINE_EVENTS``         send task events for Flower (``1``/``0``), 1
``CRYPTO_ML_ENGINE_PRELOAD``        warm each pool child on start: ``loader`` (default), ``tf``
                                    (loader + import TensorFlow in the child), ``none``
``CRYPTO_ML_ENGINE_KEY_PREFIX``     Redis only: prefix of every key the engine uses (broker and
                                    results), e.g. to share one Redis database; empty by default
``CRYPTO_ML_ENGINE_TEST_DELAY``     TEST ONLY: seconds every predict and heavy task sleeps after
                                    computing its answer and before returning (the fault tests
                                    kill the worker process then, so the task is redelivered);
                                    read at call time, 0 by default
==================================  ==========================================================

``CRYPTO_ML_HOME`` picks the folder of the embedded broker/result files (see
:func:`crypto_ml.settings.paths.home_dir`).

Note on the embedded broker: kombu passes ``broker_transport_options`` to SQLAlchemy's
``create_engine`` for ``sqla+`` URLs, so only ``create_engine`` arguments may go there; the
Redis-style options are only set for Redis URLs. The embedded broker suits one host: it polls
the SQLite file once a second when idle (so an idle worker picks a message up within ~1 s), it
cannot broadcast (no ``celery inspect``/remote control), and a message taken by a worker whose
*main* process is killed stays invisible (kombu's SQLAlchemy transport has no visibility timeout);
a killed *pool* process is covered by ``task_reject_on_worker_lost``. Use Redis or RabbitMQ to
spread work over hosts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from crypto_ml.engine.protocol import PREDICT_TASK, STATS_TASK, TRAIN_TASK
from crypto_ml.settings import env_bool, env_float, env_int, env_str, env_url

#: Fitted models kept warm per worker process (LRU), ``CRYPTO_ML_ENGINE_CACHE_SIZE``.
DEFAULT_CACHE_SIZE = 128
#: Default byte cap of a process's cache (``CRYPTO_ML_ENGINE_CACHE_MAX_MB``): room for the LSTMs of
#: every bundled coin that has one (94 of 97; 5.3 MB each by
#: :func:`crypto_ml.engine.cache.model_nbytes`, ~500 MB) next to the small models, on top of the
#: ~700 MB a pool process with TensorFlow and a first LSTM fit holds.
DEFAULT_CACHE_MAX_MB = 768

ENV_BROKER = "CRYPTO_ML_BROKER_URL"
ENV_BACKEND = "CRYPTO_ML_RESULT_BACKEND"
ENV_TEST_DELAY = "CRYPTO_ML_ENGINE_TEST_DELAY"

PREDICT_QUEUE = "predict"
TRAIN_QUEUE = "train"
#: The queue of the heavy work (:mod:`crypto_ml.engine.heavy`: backtests split per coin and model),
#: so that a long evaluation neither delays predictions nor waits behind trainings.
HEAVY_QUEUE = "heavy"
#: The tasks routed to :data:`HEAVY_QUEUE` (a glob of their names).
HEAVY_TASKS = "crypto_ml.heavy.*"
#: Seconds between two looks for messages on the embedded (SQLite) broker when its queues are empty.
SQLITE_BROKER_POLL_S = 0.1
#: Messages a worker process may hold unacknowledged on the embedded broker (1 on the others).
SQLITE_BROKER_PREFETCH = 16

#: Environment variable -> (field, getter) for the numeric/boolean/text settings.
_ENV_FIELDS: dict[str, tuple[str, Any]] = {
    "CRYPTO_ML_ENGINE_CACHE_SIZE": ("cache_size", env_int),
    "CRYPTO_ML_ENGINE_CACHE_MAX_MB": ("cache_max_mb", env_int),
    "CRYPTO_ML_ENGINE_MAX_RETRIES": ("max_retries", env_int),
    "CRYPTO_ML_ENGINE_RETRY_BACKOFF_MAX": ("retry_backoff_max", env_int),
    "CRYPTO_ML_ENGINE_VISIBILITY_TIMEOUT": ("visibility_timeout", env_int),
    "CRYPTO_ML_ENGINE_RESULT_EXPIRES": ("result_expires", env_int),
    "CRYPTO_ML_ENGINE_MAX_HORIZON": ("max_horizon", env_int),
    "CRYPTO_ML_ENGINE_EVENTS": ("events", env_bool),
    "CRYPTO_ML_ENGINE_PRELOAD": ("preload", env_str),
    "CRYPTO_ML_ENGINE_KEY_PREFIX": ("key_prefix", env_str),
}
PRELOAD_CHOICES = ("none", "loader", "tf")


def default_broker_url() -> str:
    from crypto_ml.settings.paths import home_dir

    return f"sqla+sqlite:///{home_dir() / 'engine-broker.db'}"


def default_result_backend() -> str:
    from crypto_ml.settings.paths import home_dir

    return f"db+sqlite:///{home_dir() / 'engine-results.db'}"


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine's Celery app needs (see the module docstring for the env names)."""

    broker_url: str = field(default_factory=default_broker_url)
    result_backend: str = field(default_factory=default_result_backend)
    cache_size: int = DEFAULT_CACHE_SIZE
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    max_retries: int = 5
    retry_backoff_max: int = 60
    visibility_timeout: int = 3600
    result_expires: int = 86400
    max_horizon: int = 365
    events: bool = True
    preload: str = "loader"
    key_prefix: str = ""

    def __post_init__(self) -> None:
        if self.cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {self.cache_size}")
        if self.cache_max_mb < 1:
            raise ValueError(
                f"cache_max_mb (CRYPTO_ML_ENGINE_CACHE_MAX_MB) must be >= 1, got {self.cache_max_mb}"
            )
        if self.max_horizon < 1:
            raise ValueError(f"max_horizon must be >= 1, got {self.max_horizon}")
        if self.preload not in PRELOAD_CHOICES:
            raise ValueError(f"preload must be one of {', '.join(PRELOAD_CHOICES)}, got {self.preload!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EngineConfig:
        """Defaults, then the environment (``environ`` or ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (broker := env_url(ENV_BROKER, environ=env)) is not None:
            values["broker_url"] = broker
        if (backend := env_url(ENV_BACKEND, environ=env)) is not None:
            values["result_backend"] = backend
        for name, (attr, getter) in _ENV_FIELDS.items():
            if (value := getter(name, None, environ=env)) is not None:
                values[attr] = value
        values.update(overrides)
        return cls(**values)

    # -- derived -------------------------------------------------------------------------------
    @property
    def broker_scheme(self) -> str:
        return self.broker_url.split("://", 1)[0].split("+", 1)[0].lower()

    @property
    def polled_broker(self) -> bool:
        """The embedded SQLite broker (kombu's SQLAlchemy transport), which workers poll."""
        return self.broker_scheme in ("sqla", "sqlalchemy")

    def broker_transport_options(self) -> dict[str, Any]:
        scheme = self.broker_scheme
        if scheme in ("redis", "rediss"):
            options: dict[str, Any] = {"visibility_timeout": self.visibility_timeout}
            if self.key_prefix:
                options["global_keyprefix"] = self.key_prefix
            return options
        if scheme in ("sqla", "sqlalchemy") and "sqlite" in self.broker_url:
            # create_engine() arguments only: wait for SQLite's write lock instead of failing.
            # (Its polling interval is not an option here, kombu would hand it to create_engine:
            # see crypto_ml.engine.app.make_app.)
            return {"connect_args": {"timeout": 30}}
        return {}

    def celery_settings(self) -> dict[str, Any]:
        """The Celery configuration mapping (lowercase setting names)."""
        from kombu import Exchange, Queue

        settings: dict[str, Any] = {
            "broker_url": self.broker_url,
            "result_backend": self.result_backend,
            "broker_transport_options": self.broker_transport_options(),
            "broker_connection_retry_on_startup": True,
            # JSON only, never pickle.
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "result_accept_content": ["json"],
            # At-least-once delivery: ack after the task ran, requeue when the process died.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # One message at a time per process (fair to long trainings), except on the embedded
            # broker: kombu polls it, and the worker's loop for a polled transport acks only
            # every 2 s (celery.worker.loops.synloop), so with 1 the worker took two messages
            # every 2 s whatever the queue (9.2 s p50 from send to "received" on the 89-coin day).
            "worker_prefetch_multiplier": SQLITE_BROKER_PREFETCH if self.polled_broker else 1,
            "task_track_started": True,
            "result_expires": self.result_expires,
            "result_extended": True,
            # A queue per kind of work, so long training or a backtest never starves predictions.
            "task_queues": tuple(
                Queue(name, Exchange(name, type="direct"), routing_key=name)
                for name in (PREDICT_QUEUE, TRAIN_QUEUE, HEAVY_QUEUE)
            ),
            "task_default_exchange": PREDICT_QUEUE,
            "task_default_routing_key": PREDICT_QUEUE,
            "task_default_queue": PREDICT_QUEUE,
            "task_routes": {
                PREDICT_TASK: {"queue": PREDICT_QUEUE},
                TRAIN_TASK: {"queue": TRAIN_QUEUE},
                STATS_TASK: {"queue": PREDICT_QUEUE},
                HEAVY_TASKS: {"queue": HEAVY_QUEUE},
            },
            # The retry budget of the tasks (crypto_ml.engine.tasks), set on them when they bind
            # to the app: the tasks module itself reads no setting.
            "task_annotations": {
                name: {"max_retries": self.max_retries, "retry_backoff_max": self.retry_backoff_max}
                for name in (PREDICT_TASK, TRAIN_TASK)
            },
            "worker_send_task_events": self.events,
            "task_send_sent_event": self.events,
            "enable_utc": True,
            "timezone": "UTC",
        }
        if self.key_prefix and self.result_backend.split("://", 1)[0] in ("redis", "rediss"):
            settings["result_backend_transport_options"] = {"global_keyprefix": self.key_prefix}
        if self.result_backend.startswith("db+sqlite"):
            settings["database_engine_options"] = {"connect_args": {"timeout": 30}}
        return settings

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def injected_delay(environ: Mapping[str, str] | None = None) -> float:
    """Seconds of the test-only delay of the predict and heavy tasks (``CRYPTO_ML_ENGINE_TEST_DELAY``,
    0 when unset): the task sleeps this long after computing its answer, so a test can kill the
    worker process mid-task. Never set it in production."""
    return env_float(ENV_TEST_DELAY, 0.0, environ=environ)
