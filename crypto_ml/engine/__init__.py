"""The prediction engine: a Celery app with warm models, embedded (SQLite) or distributed.

Laid out as Celery's examples are: the app, the tasks (thin), and the work in modules of its own.

- :mod:`crypto_ml.engine.app` builds the worker's app (``celery -A crypto_ml worker``), from
  :mod:`crypto_ml.settings.engine` (the one config object and its environment overrides).
- :mod:`crypto_ml.engine.request`: :class:`~crypto_ml.engine.request.EngineRequest`, the one
  request (fields, check, JSON form); :mod:`crypto_ml.engine.protocol`: task names and the error.
- :mod:`crypto_ml.engine.client`: submit and poll, for the Airflow operators, sensor and triggers.
- :mod:`crypto_ml.engine.tasks`: ``crypto_ml.predict`` / ``crypto_ml.train`` / ``crypto_ml.stats``,
  wrapping :mod:`crypto_ml.engine.service` (:func:`~crypto_ml.engine.service.run_predict`,
  :func:`~crypto_ml.engine.service.run_train`), which uses :mod:`~crypto_ml.engine.history` (the
  closes), :mod:`~crypto_ml.engine.models` (fit or load a model), :mod:`~crypto_ml.engine.store`
  (the model store, the schema migrated once) and :mod:`~crypto_ml.engine.cache` (warm models).
- :mod:`crypto_ml.engine.worker`: the worker's process lifecycle (Celery signals).

Importing this package imports neither Celery nor TensorFlow, and only
:mod:`crypto_ml.engine.app` builds an app at import.
"""

from __future__ import annotations
