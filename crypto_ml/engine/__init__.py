"""The prediction engine: a Celery app with warm models, embedded (SQLite) or distributed.

- :mod:`crypto_ml.engine.app` builds the app (``celery -A crypto_ml worker``).
- :mod:`crypto_ml.engine.protocol`: task names, request fields and the one request check (light).
- :mod:`crypto_ml.engine.config`: the one config object and its environment overrides.
- :mod:`crypto_ml.engine.tasks`: ``crypto_ml.predict`` / ``crypto_ml.train`` and the plain
  functions behind them (:func:`~crypto_ml.engine.tasks.run_predict`).
- :mod:`crypto_ml.engine.cache`: the per-process LRU cache of fitted models.
- :mod:`crypto_ml.engine.client`: submit and poll helpers for the Airflow operators and sensor.

Importing this package imports neither Celery's worker nor TensorFlow.
"""

from __future__ import annotations

from crypto_ml.engine.config import EngineConfig

__all__ = ["EngineConfig"]
