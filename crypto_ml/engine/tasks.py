"""The engine's tasks: thin Celery wrappers over plain functions (:func:`run_predict`,
:func:`run_train`), which tests and scripts call without a broker.

Task names and queues: ``crypto_ml.predict`` and ``crypto_ml.backtest`` on ``predict``,
``crypto_ml.train`` on ``train`` (see :mod:`crypto_ml.engine.config`).

Payloads are small JSON: ``coin``, ``as_of`` (ISO date), ``model``, ``horizon``, optional
``version``, optional ``params`` (hyperparameters) and optionally ``closes`` (a list of floats) or
``history`` (where the worker reads the closes up to ``as_of`` when none are sent: ``"bundled"``,
the default, the bundled dataset; ``"database"``, the prices the pipeline stored and validated in
the project database, so the daily pipeline's messages carry a coin and a day, not a history).

Failure policy:

- Bad input (unknown coin or model, a horizon that is not a positive int, wrong types, unknown
  fields, ``as_of`` before the coin has enough data) raises :class:`EngineInputError`: the task
  fails at once and is **not** retried; the message names the coin and the problem.
- Transient errors (database ``OperationalError``, connection errors, timeouts) are retried with
  exponential backoff up to ``max_retries`` times.
- Every task is idempotent: the forecast for (coin, as_of, model, version, horizon, params) is
  deterministic and stored with an upsert, so a redelivered task rewrites the same row.

Model versions: when :mod:`crypto_ml.model_store` is available and holds a version of (coin, model)
trained on data up to ``as_of``, that version is loaded (``version`` in the result); otherwise the
model is fitted on the closes up to ``as_of`` and ``version`` is ``0`` ("fitted on the fly").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from typing import Any

from celery import signals
from sqlalchemy.exc import DisconnectionError, OperationalError

from crypto_ml.engine.app import app
from crypto_ml.engine.cache import process_cache, process_loader
from crypto_ml.engine.config import EngineConfig, injected_delay
# The request check is shared with the client (a light module): re-exported here.
from crypto_ml.engine.protocol import PREDICT_FIELDS, TRAIN_FIELDS, EngineInputError, validate_request
from crypto_ml.engine.protocol import check_fields as _check_fields

log = logging.getLogger(__name__)

#: Transient errors that are retried with backoff.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DisconnectionError,
    ConnectionError,
    TimeoutError,
)

#: ``version`` of a prediction made by a model fitted on the fly (no stored model version).
ON_THE_FLY_VERSION = 0

# -- models -------------------------------------------------------------------------------------
_stores: dict[str | None, Any] = {}


def _model_store(url: str | None = None):
    """This process's :class:`~crypto_ml.model_store.ModelStore` for ``url`` (``None`` when that
    module is not installed)."""
    try:
        from crypto_ml.model_store import ModelStore
    except ImportError:  # pragma: no cover - the store is optional for the engine
        return None
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = ModelStore(url=url)
    return store


def _stored_version(store, coin: str, model: str, as_of: dt.date, version: int | None) -> dict | None:
    """The model-version row to serve, or None: the requested ``version``, else the newest one
    trained on data up to ``as_of``. A version trained up to an earlier day serves ``as_of``
    after :meth:`~crypto_ml.forecasting.base.BaseForecaster.update` moves it to the closes up to
    ``as_of`` (parameters kept); one trained on later data never does (point in time)."""
    if version is None:
        return store.info(coin, model, as_of)
    row = store.info_version(coin, model, version)
    if row is None:
        raise EngineInputError(f"coin {coin!r}: model {model!r} has no stored version {version}")
    if row["train_end"] > as_of:
        raise EngineInputError(
            f"coin {coin!r}: model {model!r} version {version} was trained on data up to "
            f"{row['train_end']}, after as_of {as_of}; it cannot serve {as_of} (point in time)")
    return row


def _history(req: dict[str, Any], loader, url: str | None = None) -> tuple[str, Any, dt.date, Any]:
    """``(coin_id, closes up to as_of, as_of, dates or None)`` for a validated request: the closes
    it sent, else those of the project database at ``url`` (``history="database"``), else the
    bundled dataset's (``loader``)."""
    import numpy as np

    from crypto_ml.data_loader import UnknownCoinError

    if req["closes"] is not None:
        closes = np.asarray(req["closes"], dtype="float64")
        as_of = req["as_of"]
        if as_of is None:
            raise EngineInputError(f"coin {req['coin']!r}: as_of is required when closes are sent")
        return req["coin"], closes, as_of, None
    if req["history"] == "database":
        return _stored_history(req["coin"], req["as_of"], url)
    try:
        coin = loader.resolve(req["coin"])
    except UnknownCoinError as exc:
        raise EngineInputError(str(exc)) from None
    closes, dates = loader.get_prices(coin, as_of=req["as_of"])
    if req["as_of"] is not None:
        as_of = req["as_of"]
    else:
        as_of = dt.date.fromisoformat(str(dates[-1])[:10])
    return coin, closes, as_of, dates


def _stored_history(coin: str, as_of: dt.date, url: str | None) -> tuple[str, Any, dt.date, Any]:
    """The closes of ``coin`` up to ``as_of`` stored in the project database (the pipeline's
    ``transform`` validated them before the request was sent); a row that is not a positive number
    is refused, naming the coin, the row and its day."""
    import numpy as np

    from crypto_ml.storage import database_url, load_closes

    resolved = database_url(url)
    dates, closes = load_closes(coin, as_of=as_of, url=resolved)
    for i, value in enumerate(closes):
        if value is None or not (math.isfinite(value) and value > 0):
            raise EngineInputError(
                f"coin {coin!r}: row {i} ({dates[i]}) of the project database has close {value!r}; "
                "prices must be positive numbers"
            )
    if not closes:
        raise EngineInputError(
            f"coin {coin!r}: no closes on or before {as_of.isoformat()} in the project database "
            f"{_redacted(resolved)} (history='database': the engine reads the database its "
            "workers are configured with, CRYPTO_ML_DATABASE_URL; is it the pipeline's?)"
        )
    return coin, np.asarray(closes, dtype="float64"), as_of, dates


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for a message
        return "(unparsable URL)"


def _fingerprint(closes, params: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode())
    digest.update(memoryview(closes.astype("float64")).cast("B"))
    return digest.hexdigest()[:16]


def _get_model(req: dict[str, Any], coin: str, closes, as_of: dt.date, cache,
               url: str | None = None, *, from_store: bool = True) -> tuple[Any, int, bool]:
    """``(fitted forecaster, version, cached)`` for the request, from the cache when warm.

    A stored version trained up to ``as_of`` (or the requested ``version``) is loaded from the
    model store; otherwise the model is fitted on the closes up to ``as_of`` (version 0).
    """
    from crypto_ml.forecasting.registry import make_forecaster

    model = req["model"]
    use_store = from_store and (not req["params"] or req["version"] is not None)
    store = _model_store(url) if use_store else None
    if store is not None:
        row = _stored_version(store, coin, model, as_of, req["version"])
        if row is not None:
            version = int(row["version"])

            def load():  # from the shared model store (database or object storage), any host
                try:
                    return store.load_row(row)
                except (FileNotFoundError, LookupError) as exc:
                    raise EngineInputError(f"coin {coin!r}: model {model!r} v{version}: {exc}") from None

            value, cached = cache.get_or_load((coin, model, f"v{version}"), load)
            if len(closes):
                try:  # move the (shared, cached) model to the closes up to as_of; params stay
                    value.update(closes)
                except ValueError as exc:
                    raise EngineInputError(
                        f"coin {coin!r}: model {model!r} v{version} cannot serve {as_of}: {exc}"
                    ) from None
            return value, version, cached
    try:
        forecaster = make_forecaster(model, **req["params"])
    except TypeError as exc:
        raise EngineInputError(f"coin {coin!r}: bad params for model {model!r}: {exc}") from None
    need = int(forecaster.min_points())
    if len(closes) < need:
        raise EngineInputError(
            f"coin {coin!r}: only {len(closes)} closes up to {as_of.isoformat()}, model {model!r} "
            f"needs at least {need}; pick a later as_of"
        )
    key = (coin, model, f"as_of={as_of.isoformat()}", _fingerprint(closes, req["params"]))

    def fit():
        try:
            return forecaster.fit(closes)
        except ValueError as exc:  # degenerate history: deterministic, not retried
            raise EngineInputError(f"coin {coin!r}: cannot fit {model!r} up to {as_of}: {exc}") from None

    value, cached = cache.get_or_load(key, fit)
    return value, ON_THE_FLY_VERSION, cached


def _unpack_loaded(loaded) -> tuple[Any, int]:  # pragma: no cover - depends on the model store
    if isinstance(loaded, tuple):
        return loaded[0], int(loaded[1])
    for attr in ("forecaster", "model"):
        if hasattr(loaded, attr) and hasattr(loaded, "version"):
            return getattr(loaded, attr), int(loaded.version)
    return loaded, int(getattr(loaded, "version_", ON_THE_FLY_VERSION))


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def ensure_schema(url: str | None = None) -> str:
    """Migrate the project database once per process and URL; returns the resolved URL."""
    from crypto_ml.storage import database_url, migrate

    resolved = database_url(url)
    if resolved not in _migrated:
        with _migrate_lock:
            if resolved not in _migrated:
                migrate(resolved)
                _migrated.add(resolved)
    return resolved


# -- the plain functions ------------------------------------------------------------------------
def run_predict(
    *,
    coin: Any,
    as_of: Any = None,
    model: Any = "naive",
    horizon: Any = 10,
    version: Any = None,
    params: Any = None,
    closes: Any = None,
    history: Any = None,
    run_id: Any = None,
    store: bool = True,
    url: str | None = None,
    cache=None,
    loader=None,
    hostname: str | None = None,
    levels: Any = None,
) -> dict[str, Any]:
    """Forecast ``horizon`` daily closes of ``coin`` after ``as_of``. Computes only: the engine
    writes no prediction (the pipeline's ``decide`` task is the one writer), so a redelivered
    task changes nothing. ``store`` says whether stored model versions are served (the project
    database at ``url`` is migrated once per process, and ``history="database"`` reads the closes
    from it); ``run_id`` is validated only.

    Returns ``{coin, as_of, model, version, horizon, values, last_close, expected_return,
    intervals, interval_method, hostname, pid, cached, seconds}`` (JSON-able). ``intervals`` are
    the path's bounds per level (``levels``, default 80 and 95 percent):
    ``{"80": {"lower": [...], "upper": [...]}, ...}``, one bound per step, calibrated on the
    training window only (None when the history is too short to calibrate).
    ``cached`` says whether the fitted model was
    already warm in this process. Raises :class:`EngineInputError` for bad input.
    """
    started = time.perf_counter()
    req = validate_request(
        coin=coin, as_of=as_of, model=model, horizon=horizon, version=version, params=params,
        closes=closes, history=history,
    )
    if run_id is not None and not isinstance(run_id, str):
        raise EngineInputError(f"coin {req['coin']!r}: run_id must be a string, got {run_id!r}")
    cache = cache if cache is not None else process_cache()
    bundled = req["closes"] is None and req["history"] == "bundled"
    loader = loader if loader is not None else (process_loader() if bundled else None)
    resolved = ensure_schema(url) if store else url
    coin_id, history, day, _ = _history(req, loader, resolved)
    if len(history) == 0:
        raise EngineInputError(f"coin {coin_id!r}: no closes on or before {day.isoformat()}")
    forecaster, used_version, cached = _get_model(req, coin_id, history, day, cache, resolved)
    from crypto_ml.forecasting import DEFAULT_LEVELS, check_levels

    try:
        levels = check_levels(DEFAULT_LEVELS if levels is None else levels)
    except ValueError as exc:
        raise EngineInputError(f"coin {coin_id!r}: {exc}") from None
    forecast = forecaster.predict_with_intervals(req["horizon"], levels)
    values = forecast["values"]
    last_close = float(history[-1])
    if not last_close or not math.isfinite(last_close):
        raise EngineInputError(f"coin {coin_id!r}: last close up to {day} is {last_close!r}")
    delay = injected_delay()  # TEST ONLY (CRYPTO_ML_ENGINE_TEST_DELAY): after the forecast
    if delay:
        time.sleep(delay)
    from crypto_ml.prediction import PredictionRecord

    record = PredictionRecord(
        coin=coin_id, as_of=day, model=req["model"], version=used_version, horizon=req["horizon"],
        values=values, last_close=last_close, intervals=forecast["intervals"],
        interval_method=forecast["interval_method"],
    )
    return {
        **record.to_json(),
        "hostname": hostname or socket.gethostname(),
        "pid": os.getpid(),
        "cached": cached,
        "seconds": time.perf_counter() - started,
    }


def run_train(
    *,
    coin: Any,
    as_of: Any = None,
    model: Any = "linear",
    params: Any = None,
    store: bool = True,
    url: str | None = None,
    cache=None,
    loader=None,
    hostname: str | None = None,
) -> dict[str, Any]:
    """Fit ``model`` on ``coin``'s closes up to ``as_of``; save a version through the model store
    when it exists, and keep the fitted model warm in this process's cache.

    Returns ``{coin, as_of, model, version, n_obs, saved, hostname, pid, seconds}``.
    """
    started = time.perf_counter()
    req = validate_request(coin=coin, as_of=as_of, model=model, horizon=1, params=params)
    cache = cache if cache is not None else process_cache()
    loader = loader if loader is not None else process_loader()
    coin_id, history, day, dates = _history(req, loader)
    if len(history) == 0:
        raise EngineInputError(f"coin {coin_id!r}: no closes on or before {day.isoformat()}")
    # Fit exactly as run_predict would on the fly (same validation and errors), warm the cache.
    forecaster, _, _ = _get_model({**req, "version": None}, coin_id, history, day, cache,
                                  from_store=False)
    version, saved = ON_THE_FLY_VERSION, False
    store = _model_store(ensure_schema(url)) if store else None
    if store is not None:
        version = store.save(coin_id, req["model"], forecaster, train_start=dates[0], train_end=day)
        cache.put((coin_id, req["model"], f"v{version}"), forecaster)
        saved = True
    return {
        "coin": coin_id,
        "as_of": day.isoformat(),
        "model": req["model"],
        "version": version,
        "n_obs": int(len(history)),
        "saved": saved,
        "hostname": hostname or socket.gethostname(),
        "pid": os.getpid(),
        "seconds": time.perf_counter() - started,
    }


# -- Celery tasks -------------------------------------------------------------------------------
_config = EngineConfig.from_env()
_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": _config.retry_backoff_max,
    "retry_jitter": True,
    "max_retries": _config.max_retries,
    "throws": (EngineInputError,),  # expected failures: logged without a traceback
    "acks_late": True,
    "reject_on_worker_lost": True,
}


@app.task(name="crypto_ml.predict", **_TASK_OPTIONS)
def predict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Celery wrapper of :func:`run_predict` (keyword arguments only)."""
    if args:
        raise EngineInputError(f"crypto_ml.predict takes keyword arguments only, got positional {args!r}")
    _check_fields(kwargs, PREDICT_FIELDS, kwargs.get("coin"))
    return run_predict(**kwargs, hostname=self.request.hostname)


@app.task(name="crypto_ml.train", **_TASK_OPTIONS)
def train(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Celery wrapper of :func:`run_train` (keyword arguments only)."""
    if args:
        raise EngineInputError(f"crypto_ml.train takes keyword arguments only, got positional {args!r}")
    _check_fields(kwargs, TRAIN_FIELDS, kwargs.get("coin"))
    return run_train(**kwargs, hostname=self.request.hostname)


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


@app.task(name="crypto_ml.stats", bind=True, acks_late=False)
def stats(self) -> dict[str, Any]:
    """Stats of the pool process that runs it (:func:`process_stats`), for monitoring/benchmarks."""
    return {**process_stats(), "hostname": self.request.hostname}


# -- worker process lifecycle -------------------------------------------------------------------
@signals.worker_init.connect
def _on_worker_init(**_: Any) -> None:
    """In the worker's main process, before the pool forks: migrate the database once, then drop
    the connections so no child inherits them. Never import TensorFlow here."""
    from crypto_ml.storage import database_url, dispose_engine, migrate

    try:
        url = database_url()
        migrate(url)
        dispose_engine(url)
    except Exception as exc:  # noqa: BLE001 - tasks will migrate (and retry) themselves
        log.warning("crypto_ml engine: could not migrate the database at start: %s", exc)
    if "tensorflow" in sys.modules:
        log.warning("crypto_ml engine: TensorFlow was imported in the parent before the fork; "
                    "the prefork pool is not safe with it")


@signals.worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    """In each pool child, after the fork: fresh engines and warm state, built here."""
    from crypto_ml.storage import dispose_engine

    try:
        dispose_engine()
    except Exception:  # noqa: BLE001
        pass
    preload = EngineConfig.from_env().preload
    if preload in ("loader", "tf"):
        process_loader()
        import sklearn.linear_model  # noqa: F401 - the linear models' first fit costs ~1 s otherwise
    if preload == "tf":
        from crypto_ml.forecasting.lstm import import_keras

        import_keras()
    log.info("crypto_ml engine: pool process %d ready (preload=%s)", os.getpid(), preload)
