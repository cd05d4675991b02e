"""Per-process warm state of a worker: an LRU cache of fitted models bounded by count and by bytes,
and the loader.

Each pool process (Celery prefork child) has its own :class:`ModelCache` and its own
:class:`~crypto_ml.data.loader.CryptoLoader`, created on first use *in that process*: after a
fork the child starts empty (the cache remembers the pid that created it), so nothing built in the
parent, TensorFlow least of all, is ever shared across a fork.

A model's size (:func:`model_nbytes`) is estimated from what it holds, not from the process's RSS:
the growth of RSS while one model loads is not that model's size (the first LSTM pays for
TensorFlow's own start, a freed model's pages are reused by the next one, and RSS moved by -24 to
+32 MB between two consecutive LSTMs of the same size). The estimate is the bytes
of the numpy arrays the model holds, plus, for a Keras network, its weights and
:data:`KERAS_MODEL_OVERHEAD_BYTES`, the measured RSS a warm network costs beyond its weights.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

# The defaults live with the engine's configuration (the one home of settings).
from crypto_ml.settings.engine import DEFAULT_CACHE_MAX_MB, DEFAULT_CACHE_SIZE  # noqa: F401

log = logging.getLogger(__name__)

#: RSS a warm Keras network costs beyond its weights' bytes (its layers, the model object and its
#: traced prediction function), rounded up from what was measured for the talk-sized LSTM (277 kB of
#: weights): 4.3 MB of VmRSS per further warm LSTM from 5 to 20 of them (bundled coins, fitted and
#: served once each, ``benchmarks/bench_tf.py`` part b), 5 MB per LSTM over 12 of the same size.
KERAS_MODEL_OVERHEAD_BYTES = 5 * 2**20
_MAX_DEPTH = 4


def _is_keras_model(obj: Any) -> bool:
    return type(obj).__module__.startswith("keras") and hasattr(obj, "get_weights")


def model_nbytes(value: Any) -> int:
    """Estimated bytes of a fitted model: the ``nbytes`` of every numpy array among its attributes (and
    their attributes, a few levels down: an sklearn estimator's ``coef_``, a pandas object's
    columns), plus, for each Keras network, its weights' bytes and :data:`KERAS_MODEL_OVERHEAD_BYTES`."""
    import numpy as np

    total, seen, stack = 0, set(), [(value, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, type)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += int(obj.nbytes)
        elif _is_keras_model(obj):
            total += sum(int(w.nbytes) for w in obj.get_weights()) + KERAS_MODEL_OVERHEAD_BYTES
        elif hasattr(obj, "memory_usage") and hasattr(obj, "index"):  # pandas Series / DataFrame
            total += int(np.sum(obj.memory_usage(index=True)))
        elif depth < _MAX_DEPTH:
            if isinstance(obj, dict):
                children = list(obj.values())
            elif isinstance(obj, (list, tuple, set, frozenset)):
                children = list(obj)
            else:
                children = list(getattr(obj, "__dict__", {}).values())
            stack.extend((child, depth + 1) for child in children)
    return total


class ModelCache:
    """A thread-safe LRU mapping ``key -> fitted model`` holding at most ``maxsize`` entries and at most
    ``max_bytes`` bytes of models (``None``: no byte bound), each model's size given by ``sizer``
    (default :func:`model_nbytes`). Storing a model evicts the least recently used ones until both
    bounds hold; a model larger than ``max_bytes`` on its own is served but not kept, with one
    warning line in the log (counted in :meth:`stats` as ``too_big``).

    Keys are tuples like ``(coin, model, "v3")`` or ``(coin, model, "as_of=2018-01-31", ...)``.
    """

    def __init__(
        self,
        maxsize: int = DEFAULT_CACHE_SIZE,
        max_bytes: int | None = None,
        sizer: Callable[[Any], int] = model_nbytes,
    ) -> None:
        if int(maxsize) < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        if max_bytes is not None and int(max_bytes) < 1:
            raise ValueError(f"max_bytes must be >= 1 (or None), got {max_bytes}")
        self.maxsize = int(maxsize)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._sizer = sizer
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._sizes: dict[Hashable, int] = {}
        self._bytes = 0
        self._lock = threading.RLock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self.hits = self.misses = self.evictions = self.too_big = 0

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, cached)``: the cached value (marked most recent), else ``load()`` stored."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key], True
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one load per key even with threads
            with self._lock:
                if key in self._data:
                    self._data.move_to_end(key)
                    self.hits += 1
                    return self._data[key], True
            value = load()
            with self._lock:
                self.misses += 1
            self.put(key, value)
            with self._lock:
                self._key_locks.pop(key, None)
            return value, False

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` as the most recent entry, evicting the least recent ones to stay in bounds
        (or keep it out, logged, when it alone is larger than ``max_bytes``)."""
        size = int(self._sizer(value))  # outside the lock: a Keras model's weights are copied out
        with self._lock:
            self._drop(key)
            if self.max_bytes is not None and size > self.max_bytes:
                self.too_big += 1
                log.warning(
                    "crypto_ml engine: model %s is %.1f MB, more than the cache's %.1f MB cap "
                    "(CRYPTO_ML_ENGINE_CACHE_MAX_MB): served but not kept warm",
                    key,
                    size / 2**20,
                    self.max_bytes / 2**20,
                )
                return
            self._data[key] = value
            self._sizes[key] = size
            self._bytes += size
            while len(self._data) > self.maxsize or self._over_bytes():
                oldest = next(iter(self._data))
                self._drop(oldest)
                self.evictions += 1

    def _over_bytes(self) -> bool:
        return self.max_bytes is not None and self._bytes > self.max_bytes

    def _drop(self, key: Hashable) -> None:
        if key in self._data:
            del self._data[key]
            self._bytes -= self._sizes.pop(key)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def nbytes(self) -> int:
        """Estimated bytes of the models held (:func:`model_nbytes` of each)."""
        with self._lock:
            return self._bytes

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._bytes = 0

    def stats(self) -> dict[str, int | None]:
        with self._lock:
            return {
                "size": len(self._data),
                "maxsize": self.maxsize,
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "too_big": self.too_big,
            }


_state_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "cache": None, "loader": None}


def _reset_if_forked() -> None:
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), cache=None, loader=None)


def process_cache(maxsize: int | None = None, max_bytes: int | None = None) -> ModelCache:
    """This process's model cache, created on first use (its bounds from the engine config:
    ``CRYPTO_ML_ENGINE_CACHE_SIZE`` models, ``CRYPTO_ML_ENGINE_CACHE_MAX_MB`` megabytes)."""
    with _state_lock:
        _reset_if_forked()
        if _state["cache"] is None:
            if maxsize is None or max_bytes is None:
                from crypto_ml.settings.engine import EngineConfig

                config = EngineConfig.from_env()
                maxsize = config.cache_size if maxsize is None else maxsize
                max_bytes = config.cache_max_mb * 2**20 if max_bytes is None else max_bytes
            _state["cache"] = ModelCache(maxsize, max_bytes)
        return _state["cache"]


def process_loader():
    """This process's :class:`~crypto_ml.data.loader.CryptoLoader` (bundled data, loaded once)."""
    with _state_lock:
        _reset_if_forked()
        if _state["loader"] is None:
            from crypto_ml.data.loader import CryptoLoader

            _state["loader"] = CryptoLoader()
        return _state["loader"]


def reset_process_state() -> None:
    """Forget the cache and loader of this process (tests, or after a fork)."""
    with _state_lock:
        _state.update(pid=os.getpid(), cache=None, loader=None)
