"""Per-process warm state of a worker: a bounded LRU cache of fitted models, and the loader.

Each pool process (Celery prefork child) has its own :class:`ModelCache` and its own
:class:`~crypto_ml.data.loader.CryptoLoader`, created on first use *in that process*: after a
fork the child starts empty (the cache remembers the pid that created it), so nothing built in the
parent, TensorFlow least of all, is ever shared across a fork.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

DEFAULT_CACHE_SIZE = 128


class ModelCache:
    """A thread-safe LRU mapping ``key -> fitted model`` holding at most ``maxsize`` entries.

    Keys are tuples like ``(coin, model, "v3")`` or ``(coin, model, "as_of=2018-01-31", ...)``.
    """

    def __init__(self, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        if int(maxsize) < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self.hits = self.misses = self.evictions = 0

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
                self._data[key] = value
                self._data.move_to_end(key)
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
                    self.evictions += 1
                self._key_locks.pop(key, None)
            return value, False

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evictions += 1

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "size": len(self._data),
                "maxsize": self.maxsize,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
            }


_state_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "cache": None, "loader": None}


def _reset_if_forked() -> None:
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), cache=None, loader=None)


def process_cache(maxsize: int | None = None) -> ModelCache:
    """This process's model cache, created on first use (size from the engine config)."""
    with _state_lock:
        _reset_if_forked()
        if _state["cache"] is None:
            if maxsize is None:
                from crypto_ml.settings.engine import EngineConfig

                maxsize = EngineConfig.from_env().cache_size
            _state["cache"] = ModelCache(maxsize)
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
