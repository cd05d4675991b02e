"""A worker process's handles on the project database: its schema, migrated once per process and
URL, and the model store of the fitted versions it serves."""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, Any

from crypto_ml.engine.protocol import EngineInputError

if TYPE_CHECKING:
    from crypto_ml.storage.model_store import ModelStore

_migrated: set[str] = set()
_migrate_lock = threading.Lock()
_stores: dict[str | None, ModelStore] = {}
_stores_lock = threading.Lock()


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


def model_store(url: str | None = None) -> ModelStore:
    """This process's :class:`~crypto_ml.storage.model_store.ModelStore` for the project database ``url``."""
    from crypto_ml.storage.model_store import ModelStore

    with _stores_lock:
        if url not in _stores:
            _stores[url] = ModelStore(url=url)
        return _stores[url]


def stored_version(
    store: ModelStore, coin: str, model: str, as_of: dt.date, version: int | None
) -> dict[str, Any] | None:
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
            f"{row['train_end']}, after as_of {as_of}; it cannot serve {as_of} (point in time)"
        )
    return row
