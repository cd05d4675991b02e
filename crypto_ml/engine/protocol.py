"""What a request to the engine looks like: task names, fields, and the one check of a request.

Shared by the sender (:mod:`crypto_ml.engine.client`, in Airflow tasks) and the worker
(:mod:`crypto_ml.engine.tasks`), so a bad request fails in the caller with the same message the
worker would give. Light on purpose: the standard library and :mod:`crypto_ml.catalog` only (no
Celery, no SQLAlchemy, no numpy/pandas/scikit-learn), since every Airflow task that submits work
imports it.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from typing import Any

from crypto_ml.catalog import MODEL_NAMES

#: Celery task names (the worker registers them in :mod:`crypto_ml.engine.tasks`).
PREDICT_TASK = "crypto_ml.predict"
TRAIN_TASK = "crypto_ml.train"

#: Keyword arguments each task accepts.
PREDICT_FIELDS = ("coin", "as_of", "model", "horizon", "version", "params", "closes", "history", "run_id",
                  "levels")

#: Where the worker reads a coin's closes when a request sends none (``history``):
#: ``"bundled"`` (the default) the dataset shipped with the package, ``"database"`` the prices the
#: pipeline stored in the project database (what its ``transform`` task validated: the request
#: then carries a claim, coin and day, instead of the history itself).
HISTORY_SOURCES = ("bundled", "database")
TRAIN_FIELDS = ("coin", "as_of", "model", "params")


class EngineInputError(ValueError):
    """A request the engine can never serve (bad coin, model, horizon, types or dates).

    Not retried. The message names the coin and the problem.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _label(coin: Any) -> str:
    return repr(coin) if isinstance(coin, str) else f"{coin!r} ({type(coin).__name__})"


def check_fields(kwargs: dict[str, Any], allowed: tuple[str, ...], coin: Any) -> None:
    """:class:`EngineInputError` naming the unknown fields and the valid ones."""
    extra = sorted(set(kwargs) - set(allowed))
    if extra:
        raise EngineInputError(
            f"coin {coin!r}: unknown field(s) {', '.join(extra)}; valid fields: {', '.join(allowed)}"
        )


def validate_request(
    *,
    coin: Any,
    as_of: Any = None,
    model: Any = "naive",
    horizon: Any = 10,
    version: Any = None,
    params: Any = None,
    closes: Any = None,
    history: Any = None,
    max_horizon: int | None = None,
) -> dict[str, Any]:
    """Check the types and values of a predict/train request; a clean dict or
    :class:`EngineInputError`. Does not touch the data (the worker checks the coin)."""
    if not isinstance(coin, str) or not coin.strip():
        raise EngineInputError(f"coin must be a non-empty string, got {_label(coin)}")
    who = f"coin {coin!r}"
    if not isinstance(model, str) or model.strip().lower() not in MODEL_NAMES:
        raise EngineInputError(f"{who}: unknown model {model!r}; valid models: {', '.join(MODEL_NAMES)}")
    model = model.strip().lower()
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise EngineInputError(f"{who}: horizon must be a positive int (days), got {horizon!r}")
    if max_horizon is None:
        from crypto_ml.engine.config import EngineConfig

        max_horizon = EngineConfig.from_env().max_horizon
    if horizon > max_horizon:
        raise EngineInputError(f"{who}: horizon {horizon} exceeds the maximum of {max_horizon} days")
    day = None
    if as_of is not None:
        if isinstance(as_of, dt.datetime):
            day = as_of.date()
        elif isinstance(as_of, dt.date):
            day = as_of
        elif isinstance(as_of, str):
            try:
                day = dt.date.fromisoformat(as_of.strip()[:10])
            except ValueError:
                raise EngineInputError(
                    f"{who}: as_of must be an ISO date (YYYY-MM-DD), got {as_of!r}"
                ) from None
        else:
            raise EngineInputError(f"{who}: as_of must be an ISO date string, got {as_of!r}")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, numbers.Integral) or version < 1
    ):
        raise EngineInputError(f"{who}: version must be a positive int or null, got {version!r}")
    if params is not None:
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise EngineInputError(f"{who}: params must be an object of hyperparameters, got {params!r}")
    if closes is not None:
        if not isinstance(closes, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in closes
        ):
            raise EngineInputError(f"{who}: closes must be a list of finite numbers")
    if history is not None and history not in HISTORY_SOURCES:
        raise EngineInputError(f"{who}: history must be one of {', '.join(HISTORY_SOURCES)}, got {history!r}")
    if history == "database" and closes is not None:
        raise EngineInputError(f"{who}: send closes or history='database', not both")
    if history == "database" and day is None:
        raise EngineInputError(f"{who}: as_of is required with history='database'")
    return {
        "coin": coin.strip(),
        "as_of": day,
        "model": model,
        "horizon": int(horizon),
        "version": None if version is None else int(version),
        "params": dict(params or {}),
        "closes": None if closes is None else [float(v) for v in closes],
        "history": history or "bundled",
    }
