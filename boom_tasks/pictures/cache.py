"""A bounded in-process cache of rendered pictures, for the API and the dashboard.

Drawing one picture costs ~0.2-0.5 s of CPU; a page of thumbnails reloaded every
15 s, or a user paging back and forth, would redraw the same ones. Entries expire
after a while because a picture can change: a later alert of the object brings
forced photometry of earlier nights, and a filter may pass the alert later.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

#: Pictures kept: ~120 KiB each at full size, so ~30 MiB at most.
DEFAULT_ENTRIES = 256
#: Seconds a picture is served from the cache before it is drawn again.
DEFAULT_TTL_S = 300.0


class PictureCache:
    """Least-recently-used PNGs by key, each kept at most ``ttl_s`` seconds (thread-safe).

    Parameters
    ----------
    entries
        Most pictures kept; the least recently used goes first.
    ttl_s
        Age after which a picture is drawn again.
    clock
        Time source (tests pass their own).
    """

    def __init__(
        self,
        entries: int = DEFAULT_ENTRIES,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if entries < 1:
            raise ValueError(f"a picture cache needs at least one entry, got {entries}")
        self.entries, self.ttl_s, self._clock = entries, ttl_s, clock
        self._items: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """Return the cached picture of ``key``, or None if absent or expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None or self._clock() - item[0] > self.ttl_s:
                self._items.pop(key, None)
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, png: bytes) -> None:
        """Keep ``png`` under ``key``, dropping the least recently used beyond the bound."""
        with self._lock:
            self._items[key] = (self._clock(), png)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def get_or_draw(self, key: Hashable, draw: Callable[[], bytes]) -> bytes:
        """Return the cached picture of ``key``, or draw, keep and return it.

        Two requests missing at once both draw (the lock is not held while
        drawing, so one slow picture does not stall the others).
        """
        png = self.get(key)
        if png is None:
            png = draw()
            self.put(key, png)
        return png

    def __len__(self) -> int:
        return len(self._items)
