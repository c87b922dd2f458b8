"""A least-recently-used cache for rendered thumbnails."""

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class LRUCache:
    """Holds at most `capacity` entries; putting one more evicts the least recently used."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._hits = 0
        self._misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The cached value (now the most recently used), or `default`."""
        if key not in self._data:
            self._misses += 1
            return default
        self._hits += 1
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        """Cache `value` under `key`, evicting the least recently used entry when full."""
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        self._data.clear()
        self._hits = 0
        self._misses = 0

    def stats(self) -> dict[str, int]:
        """Hits and misses of `get` so far, and how full the cache is."""
        return {
            "hits": self._hits,
            "misses": self._misses,
            "size": len(self._data),
            "capacity": self.capacity,
        }
