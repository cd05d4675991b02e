"""The engine's wire contract: the Celery task names, and the error of a request it cannot serve.

A request's fields, their JSON form and their check are :class:`crypto_ml.engine.request.EngineRequest`.
Light on purpose (the standard library only), as every Airflow task that submits work imports it.
"""

from __future__ import annotations

#: Celery task names (registered by :mod:`crypto_ml.engine.tasks`); renaming one breaks the wire.
PREDICT_TASK = "crypto_ml.predict"
TRAIN_TASK = "crypto_ml.train"
STATS_TASK = "crypto_ml.stats"


class EngineInputError(ValueError):
    """A request the engine can never serve (bad coin, model, horizon, types or dates).

    Not retried. The message names the coin and the problem.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
