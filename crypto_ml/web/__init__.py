"""Web view of recent predictions and trade requests, served inside the Airflow UI by a plugin.

:func:`crypto_ml.web.app.create_app` builds the FastAPI app (HTML page, PNG plot, JSON). This module
imports nothing but the standard library, so the Airflow plugin in ``plugins/crypto_ml_plugin.py``
can register a :class:`LazyASGIApp` without every Airflow process (scheduler, DAG processor, task
runners, which all load plugins) paying for FastAPI, SQLAlchemy and matplotlib imports; the app is
built on its first request in the api-server.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

__all__ = ["LazyASGIApp", "create_app", "create_plugin_app"]


class LazyASGIApp:
    """An ASGI app that builds the real one on its first call.

    Parameters
    ----------
    factory
        ``"module:callable"`` returning an ASGI app, called once with ``kwargs``.
    """

    def __init__(self, factory: str, **kwargs: Any) -> None:
        module, sep, attr = factory.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"factory must look like 'module:callable', got {factory!r}")
        self.factory = factory
        self.kwargs = kwargs
        self._app: Any = None
        self._lock = threading.Lock()

    def build(self) -> Any:
        """Return the real app, building it on the first call (thread-safe)."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    module, _, attr = self.factory.partition(":")
                    self._app = getattr(importlib.import_module(module), attr)(**self.kwargs)
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        app = self._app
        if app is None:
            # Importing FastAPI/matplotlib/Airflow's security module takes a second or two: keep
            # that off the event loop the rest of the api-server runs on.
            import anyio.to_thread

            app = await anyio.to_thread.run_sync(self.build)
        await app(scope, receive, send)

    def __repr__(self) -> str:
        state = "built" if self._app is not None else "not built yet"
        return f"<LazyASGIApp {self.factory} ({state})>"


def __getattr__(name: str) -> Any:
    # ``from crypto_ml.web import create_app`` works without importing FastAPI at package import.
    if name in ("create_app", "create_plugin_app"):
        return getattr(importlib.import_module("crypto_ml.web.app"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
