from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from lrukit.stats import CacheStats

_MISSING = object()


class LRUCache:
    """A bounded mapping that evicts the least recently used entry. All methods are thread-safe."""

    def __init__(self, maxsize: int = 128, on_evict: Callable[[Hashable, Any], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.on_evict = on_evict
        self.stats = CacheStats()
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            value = self._lookup(key)
            return default if value is _MISSING else value

    def put(self, key: Hashable, value: Any) -> None:
        evicted = []
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                evicted.append(self._data.popitem(last=False))
                self.stats.evictions += 1
        # Callbacks run outside the lock so they may use the cache.
        if self.on_evict:
            for old_key, old_value in evicted:
                self.on_evict(old_key, old_value)

    def pop(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            return self._data.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._data)

    def get_or_compute(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """Return the cached value for `key`, calling `factory()` to fill it on a miss.

        The factory runs without holding the cache lock, so a slow computation does not
        block readers of other keys.
        """
        with self._lock:
            value = self._lookup(key)
        if value is not _MISSING:
            return value
        value = factory()
        self.put(key, value)
        return value

    def _lookup(self, key: Hashable) -> Any:
        """Find `key`, count the hit or miss and mark it recently used. Caller holds the lock."""
        if key in self._data:
            self._data.move_to_end(key)
            self.stats.hits += 1
            return self._data[key]
        self.stats.misses += 1
        return _MISSING
