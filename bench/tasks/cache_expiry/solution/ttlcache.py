"""A cache whose entries expire a fixed time after they are stored.

Times come from an injectable clock (seconds, as time.monotonic gives them) so that tests do
not sleep; the time-to-live is configured in milliseconds, like every timeout in our config.
"""

import time
from collections.abc import Callable, Hashable
from typing import Any


class ExpiringCache:
    def __init__(self, ttl_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_ms <= 0:
            raise ValueError("ttl_ms must be positive")
        self._ttl = ttl_ms / 1000
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def set(self, key: Hashable, value: Any) -> None:
        """Store `value`; it expires ttl_ms milliseconds from now."""
        self._entries[key] = (self._clock() + self._ttl, value)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value if it is stored and not expired, else `default`."""
        entry = self._entries.get(key)
        if entry is None:
            return default
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return default
        return value

    def purge(self) -> int:
        """Drop every expired entry; how many there were."""
        now = self._clock()
        dead = [k for k, (expires, _) in self._entries.items() if now >= expires]
        for key in dead:
            del self._entries[key]
        return len(dead)

    def __len__(self) -> int:
        return len(self._entries)
