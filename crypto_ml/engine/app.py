"""The prediction engine's Celery app: ``celery -A crypto_ml worker`` / ``celery -A crypto_ml flower``.

``-A crypto_ml`` finds this app through the package's lazy ``crypto_ml.app`` attribute (see
:mod:`crypto_ml`); ``-A crypto_ml.engine.app`` names it directly.

Configured from one object, :class:`crypto_ml.settings.engine.EngineConfig` (environment overrides
``CRYPTO_ML_BROKER_URL``, ``CRYPTO_ML_RESULT_BACKEND``, ``CRYPTO_ML_ENGINE_*``). With no
configuration the broker and result store are SQLite files under ``CRYPTO_ML_HOME`` (no server).
The tasks live in :mod:`crypto_ml.engine.tasks`, the worker's lifecycle in
:mod:`crypto_ml.engine.worker`. This is the one module that builds an app at import (``app``, what
``celery -A`` loads); senders do not need it: the client (:mod:`crypto_ml.engine.client`) sends
by task name through an app without the tasks.
"""

from __future__ import annotations

from celery import Celery

from crypto_ml.settings.engine import SQLITE_BROKER_POLL_S, EngineConfig


def make_app(config: EngineConfig | None = None) -> Celery:
    """A Celery app named ``crypto_ml`` configured from ``config`` (default: the environment)."""
    config = config if config is not None else EngineConfig.from_env()
    celery_app = Celery("crypto_ml", include=["crypto_ml.engine.tasks", "crypto_ml.engine.worker"])
    celery_app.config_from_object(config.celery_settings())
    celery_app.engine_config = config
    if config.polled_broker:
        # The embedded broker is polled: look every SQLITE_BROKER_POLL_S seconds, not kombu's 1 s.
        # At 1 s the worker took about one message a second (it sleeps whenever its two unacked
        # slots are full): 9.2 s p50 from send to "received" on the 89-coin day, for 0.03 s of
        # work. kombu reads the interval from the transport options, which its SQLAlchemy
        # transport also hands to create_engine(), so it is set on the transport class.
        from kombu.transport import sqlalchemy as kombu_sqla

        kombu_sqla.Transport.polling_interval = SQLITE_BROKER_POLL_S
    return celery_app


app = make_app()

__all__ = ["app", "make_app"]
