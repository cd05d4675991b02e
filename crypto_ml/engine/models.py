"""The fitted model that serves a request: a stored version, or one fitted on the fly, kept warm in
the process's cache (:mod:`crypto_ml.engine.cache`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.protocol import EngineInputError
from crypto_ml.engine.store import model_store, stored_version

if TYPE_CHECKING:
    from crypto_ml.engine.cache import ModelCache
    from crypto_ml.engine.request import EngineRequest
    from crypto_ml.storage.model_store import ModelStore

#: ``version`` of a prediction made by a model fitted on the fly (no stored model version).
ON_THE_FLY_VERSION = 0


def fingerprint(closes, params: dict[str, Any]) -> str:
    """A short hash of the closes and the hyperparameters: the cache key of a model fitted on them."""
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode())
    digest.update(memoryview(closes.astype("float64")).cast("B"))
    return digest.hexdigest()[:16]


def get_model(
    request: EngineRequest,
    coin: str,
    closes,
    as_of: dt.date,
    cache: ModelCache,
    url: str | None = None,
    *,
    from_store: bool = True,
) -> tuple[Any, int, bool]:
    """``(fitted forecaster, version, cached)`` for the request, from the cache when warm.

    A stored version trained up to ``as_of`` (or the requested ``version``) is loaded from the
    model store of the project database at ``url`` and moved to the closes up to ``as_of``;
    otherwise the model is fitted on the closes up to ``as_of`` (version 0). Hyperparameters
    without a ``version`` always fit on the fly (a stored version has its own).
    """
    if from_store and (not request.params or request.version is not None):
        store = model_store(url)
        row = stored_version(store, coin, request.model, as_of, request.version)
        if row is not None:
            return _load_version(store, row, coin, request.model, closes, as_of, cache)
    value, cached = fit_model(request, coin, closes, as_of, cache)
    return value, ON_THE_FLY_VERSION, cached


def fit_model(
    request: EngineRequest, coin: str, closes, as_of: dt.date, cache: ModelCache
) -> tuple[Any, bool]:
    """``(forecaster fitted on closes, cached)``; refuses a history too short for the model."""
    from crypto_ml.forecasting.registry import make_forecaster

    model = request.model
    try:
        forecaster = make_forecaster(model, **request.params)
    except TypeError as exc:
        raise EngineInputError(f"coin {coin!r}: bad params for model {model!r}: {exc}") from None
    need = int(forecaster.min_points())
    if len(closes) < need:
        raise EngineInputError(
            f"coin {coin!r}: only {len(closes)} closes up to {as_of.isoformat()}, model {model!r} "
            f"needs at least {need}; pick a later as_of"
        )

    def fit():
        try:
            return forecaster.fit(closes)
        except ValueError as exc:  # degenerate history: deterministic, not retried
            raise EngineInputError(f"coin {coin!r}: cannot fit {model!r} up to {as_of}: {exc}") from None

    key = (coin, model, f"as_of={as_of.isoformat()}", fingerprint(closes, request.params))
    return cache.get_or_load(key, fit)


def _load_version(
    store: ModelStore, row: dict[str, Any], coin: str, model: str, closes, as_of: dt.date, cache: ModelCache
) -> tuple[Any, int, bool]:
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
