"""The engine's work as plain functions, which the Celery tasks (:mod:`crypto_ml.engine.tasks`)
wrap and tests and scripts call without a broker.

Failure policy:

- A request the engine can never serve (unknown coin or model, a horizon that is not a positive
  int, wrong types, unknown fields, ``as_of`` before the coin has enough data) raises
  :class:`~crypto_ml.engine.protocol.EngineInputError`, which the tasks never retry; the message
  names the coin and the problem.
- Everything is idempotent: the forecast for (coin, as_of, model, version, horizon, params) is
  deterministic and the engine writes no prediction (the pipeline's ``decide`` task is the one
  writer), so a redelivered task changes nothing; a training saves its version once.

Model versions: when the model store holds a version of (coin, model) trained on data up to
``as_of``, that version is served (``version`` in the result); otherwise the model is fitted on the
closes up to ``as_of`` and ``version`` is ``0`` ("fitted on the fly").
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.cache import process_cache, process_loader
from crypto_ml.engine.history import load_history
from crypto_ml.engine.models import ON_THE_FLY_VERSION, fit_model, get_model
from crypto_ml.engine.protocol import EngineInputError
from crypto_ml.engine.store import ensure_schema, model_store
from crypto_ml.settings.engine import injected_delay

if TYPE_CHECKING:
    from crypto_ml.data.loader import CryptoLoader
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest


def _check_task(request: EngineRequest, task: str) -> None:
    if request.task != task:
        raise EngineInputError(f"coin {request.coin!r}: a {request.task} request sent to {task}")


def run_predict(
    request: EngineRequest,
    *,
    store: bool = True,
    url: str | None = None,
    cache: ModelCache | None = None,
    loader: CryptoLoader | None = None,
    hostname: str | None = None,
) -> dict[str, Any]:
    """Forecast ``request.horizon`` daily closes of ``request.coin`` after its ``as_of``. Computes
    only: the engine writes no prediction. ``store`` says whether stored model versions are served
    (the project database at ``url`` is migrated once per process, and ``history="database"``
    reads the closes from it).

    Returns ``{coin, as_of, model, version, horizon, values, last_close, expected_return,
    intervals, interval_method, interval_reason, hostname, pid, cached, seconds}`` (JSON-able).
    ``intervals`` are
    the path's bounds per level (``request.levels``, default 80 and 95 percent):
    ``{"80": {"lower": [...], "upper": [...]}, ...}``, one bound per step, calibrated on the
    training window only (None when the history is too short to calibrate, and then
    ``interval_reason`` says why). ``cached`` says
    whether the fitted model was already warm in this process.
    """
    started = time.perf_counter()
    _check_task(request, "predict")
    cache = cache if cache is not None else process_cache()
    bundled = request.closes is None and request.history == "bundled"
    loader = loader if loader is not None else (process_loader() if bundled else None)
    resolved = ensure_schema(url) if store else url
    coin, history, day, _ = load_history(request, loader, resolved)
    if len(history) == 0:
        raise EngineInputError(f"coin {coin!r}: no closes on or before {day.isoformat()}")
    forecaster, version, cached = get_model(request, coin, history, day, cache, resolved, from_store=store)
    from crypto_ml.forecasting import DEFAULT_LEVELS

    forecast = forecaster.predict_with_intervals(request.horizon, request.levels or DEFAULT_LEVELS)
    last_close = float(history[-1])
    if not last_close or not math.isfinite(last_close):
        raise EngineInputError(f"coin {coin!r}: last close up to {day} is {last_close!r}")
    delay = injected_delay()  # TEST ONLY (CRYPTO_ML_ENGINE_TEST_DELAY): after the forecast
    if delay:
        time.sleep(delay)
    from crypto_ml.engine.prediction import PredictionRecord

    record = PredictionRecord(
        coin=coin,
        as_of=day,
        model=request.model,
        version=version,
        horizon=request.horizon,
        values=forecast["values"],
        last_close=last_close,
        intervals=forecast["intervals"],
        interval_method=forecast["interval_method"],
        interval_reason=forecast["interval_reason"],
    )
    return {
        **record.to_json(),
        **_where(hostname),
        "cached": cached,
        "seconds": time.perf_counter() - started,
    }


def run_train(
    request: EngineRequest,
    *,
    store: bool = True,
    url: str | None = None,
    cache: ModelCache | None = None,
    loader: CryptoLoader | None = None,
    hostname: str | None = None,
) -> dict[str, Any]:
    """Fit ``request.model`` on the coin's closes up to ``as_of``; save a version in the model store
    (``store``) and keep the fitted model warm in this process's cache. A saved version is
    evaluated point in time and promoted or not (:func:`crypto_ml.evaluation.promotion.evaluate_and_record`).

    Returns ``{coin, as_of, model, version, n_obs, saved, promotion, hostname, pid, seconds}``;
    ``promotion`` is ``{status, reason}`` of the saved version (None when not saved).
    """
    started = time.perf_counter()
    _check_task(request, "train")
    cache = cache if cache is not None else process_cache()
    loader = loader if loader is not None else process_loader()
    coin, history, day, dates = load_history(request, loader)
    if len(history) == 0:
        raise EngineInputError(f"coin {coin!r}: no closes on or before {day.isoformat()}")
    # Fit exactly as run_predict would on the fly (same validation and errors), warm the cache.
    forecaster, _ = fit_model(request, coin, history, day, cache)
    version, saved, promotion = ON_THE_FLY_VERSION, False, None
    if store:
        models = model_store(ensure_schema(url))
        version = models.save(coin, request.model, forecaster, train_start=dates[0], train_end=day)
        cache.put((coin, request.model, f"v{version}"), forecaster)
        saved = True
        from crypto_ml.evaluation.promotion import evaluate_and_record  # champion / challenger

        row = evaluate_and_record(
            models, coin, request.model, version, day, history, dates, params=request.params
        )
        promotion = {"status": row["promotion"], "reason": row["promotion_reason"]}
    return {
        "coin": coin,
        "as_of": day.isoformat(),
        "model": request.model,
        "version": version,
        "n_obs": len(history),
        "saved": saved,
        "promotion": promotion,
        **_where(hostname),
        "seconds": time.perf_counter() - started,
    }


def _where(hostname: str | None) -> dict[str, Any]:
    return {"hostname": hostname or socket.gethostname(), "pid": os.getpid()}


def process_stats() -> dict[str, Any]:
    """This process's pid, RSS, model-cache statistics and whether TensorFlow is loaded."""
    import resource

    try:
        import psutil

        rss = psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "pid": os.getpid(),
        "rss_bytes": int(rss),
        "cache": process_cache().stats(),
        "tensorflow": "tensorflow" in sys.modules,
    }
