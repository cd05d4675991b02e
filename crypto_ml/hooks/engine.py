"""Hook to the prediction engine (the Celery app ``crypto_ml``) through an Airflow Connection."""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from celery import Celery

    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.settings.engine import EngineConfig


class CryptoEngineHook(BaseHook):
    """Submit work to the prediction engine and read its results.

    The Connection ``crypto_ml_engine`` (type ``crypto_ml_engine``) names the broker in its host
    field or ``extra.broker_url``, and the result backend in ``extra.result_backend``; other
    ``extra`` keys are :class:`~crypto_ml.settings.engine.EngineConfig` fields (e.g. ``key_prefix``).
    Without that Connection the engine's own environment settings apply
    (``CRYPTO_ML_BROKER_URL``, ``CRYPTO_ML_RESULT_BACKEND``; default: the embedded SQLite broker).
    A Connection id other than the default must exist: a missing one fails, naming it.

    The hook only sends by task name and reads results
    (:func:`crypto_ml.engine.client.sender_app`): it never imports the worker's task module.

    :param engine_conn_id: Connection id of the engine.
    :param connection_ttl: seconds for which this process reuses what a lookup of the Connection
        found (that it is not defined included), shared by every hook of the process that passes
        a ``connection_ttl``; 0 (the default): look it up for every hook. The engine's triggers
        pass :data:`crypto_ml.triggers.engine.ENGINE_CONNECTION_TTL`: in the long-lived
        triggerer each lookup is a round trip through the triggerer's supervisor, which serves
        every trigger's requests in turn.
    """

    conn_name_attr = "engine_conn_id"
    default_conn_name = "crypto_ml_engine"
    conn_type = "crypto_ml_engine"
    hook_name = "Crypto-ML prediction engine"

    #: Lookups shared by the hooks with a ``connection_ttl``: conn id -> (``time.monotonic()`` of
    #: the lookup, the Connection's settings for :class:`~crypto_ml.settings.engine.EngineConfig`).
    _found: ClassVar[dict[str, tuple[float, dict[str, Any]]]] = {}

    def __init__(
        self, engine_conn_id: str = default_conn_name, *, connection_ttl: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.engine_conn_id = engine_conn_id
        self.connection_ttl = connection_ttl

    @classmethod
    def forget_connections(cls) -> None:
        """Drop the lookups shared through ``connection_ttl`` (the next hook looks up again)."""
        cls._found.clear()

    def _connection_settings(self) -> dict[str, Any]:
        """The Connection's settings ({} when the default Connection is not defined)."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        if self.connection_ttl > 0:
            found = self._found.get(self.engine_conn_id)
            if found is not None and time.monotonic() - found[0] < self.connection_ttl:
                return dict(found[1])
        overrides: dict[str, Any] = {}
        try:
            conn = self.get_connection(self.engine_conn_id)
        except AirflowNotFoundException:
            if self.engine_conn_id != self.default_conn_name:
                raise AirflowNotFoundException(
                    f"engine Connection {self.engine_conn_id!r} is not defined (define it, e.g. "
                    f"AIRFLOW_CONN_{self.engine_conn_id.upper()}='crypto-ml-engine://?broker_url=...', "
                    f"or use the default {self.default_conn_name!r})"
                ) from None
        else:
            extra = conn.extra_dejson if conn.extra else {}
            overrides.update({k: v for k, v in extra.items() if v not in (None, "")})  # empty form fields
            if conn.host and "broker_url" not in overrides:
                overrides["broker_url"] = conn.host
        if self.connection_ttl > 0:
            self._found[self.engine_conn_id] = (time.monotonic(), dict(overrides))
        return overrides

    def get_config(self) -> EngineConfig:
        from crypto_ml.settings.engine import EngineConfig

        return EngineConfig.from_env(**self._connection_settings())

    @cached_property
    def app(self) -> Celery:
        """A sending Celery app for this Connection (one per distinct configuration per process)."""
        from crypto_ml.engine.client import sender_app

        return sender_app(self.get_config())

    def submit(self, request: EngineRequest, *, task_id: str | None = None) -> str:
        """Send ``request`` (see :func:`crypto_ml.engine.client.submit`); returns the engine task id."""
        from crypto_ml.engine.client import submit

        return submit(request, task_id=task_id, app=self.app)

    def get_state(self, task_id: str) -> tuple[str, Any]:
        """``(state, result | error | info)`` of an engine task, without blocking."""
        from crypto_ml.engine.client import get_state

        return get_state(task_id, app=self.app)

    def test_connection(self) -> tuple[bool, str]:
        try:
            replies = self.app.control.inspect(timeout=2.0).ping() or {}
        except Exception as exc:  # noqa: BLE001 - report any broker error to the UI
            return False, f"broker unreachable: {exc}"
        if not replies:
            return False, "broker reachable, but no engine worker answered ping"
        return True, f"{len(replies)} engine worker(s) answered: {', '.join(sorted(replies))}"
