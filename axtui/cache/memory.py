"""The memory tier: the most recently used entries, bounded by count and bytes.

A `cachetools.LRUCache` weighed by each entry's approximate size, with a
second bound on the number of entries. Thread-safe (the writer thread
drops entries it evicts from the store, the event loop reads).
"""

from __future__ import annotations

import contextlib
import threading

from cachetools import LRUCache

from axtui.cache.entry import Entry

__all__ = ["MemoryTier"]


class _BoundedLRU(LRUCache[str, Entry]):
    """An LRU bounded by total size (``maxsize``) and by entry count."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=Entry.size)
        self.max_entries = max_entries
        self.evictions = 0

    def __setitem__(self, key: str, value: Entry) -> None:
        if key not in self:
            while len(self) >= self.max_entries:
                self.popitem()
        super().__setitem__(key, value)

    def popitem(self) -> tuple[str, Entry]:
        self.evictions += 1
        return super().popitem()


class MemoryTier:
    """Recently used entries by key.

    Args:
        max_entries: the most entries held (0 switches the tier off).
        max_bytes: the most bytes held, by `Entry.size`; an entry larger than
            this is not held at all.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.enabled = max_entries > 0 and max_bytes > 0
        self._lru = _BoundedLRU(max(1, max_bytes), max(1, max_entries))
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        """The entry, marked as recently used, or None."""
        with self._lock:
            return self._lru.get(key)

    def put(self, entry: Entry) -> None:
        """Hold ``entry``, evicting the least recently used ones if needed."""
        if not self.enabled:
            return
        # An entry larger than the whole tier is not held; the store tier still has it.
        with self._lock, contextlib.suppress(ValueError):
            self._lru[entry.key] = entry

    def pop(self, key: str) -> Entry | None:
        """Forget one entry; returns it if it was held."""
        with self._lock:
            return self._lru.pop(key, None)

    def pop_many(self, keys: list[str]) -> None:
        """Forget several entries."""
        with self._lock:
            for k in keys:
                self._lru.pop(k, None)

    def clear(self) -> None:
        """Forget everything (not counted as evictions)."""
        with self._lock:
            # A new LRU in its place: deleting 10,000 entries one by one held the event loop ~15 ms.
            old, self._lru = self._lru, _BoundedLRU(int(self._lru.maxsize), self._lru.max_entries)
            self._lru.evictions = old.evictions

    def entries(self) -> list[Entry]:
        """A snapshot of every held entry (for invalidation by filter)."""
        with self._lock:
            return list(self._lru.values())

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def bytes(self) -> int:
        """Bytes held, by `Entry.size`."""
        return int(self._lru.currsize)

    @property
    def evictions(self) -> int:
        """Entries dropped to stay within the bounds since start."""
        return self._lru.evictions
