"""The default store: a bounded dict in this process, safe across threads."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hubsig._dedupe import Claim

__all__ = ["MemoryStore"]

_CLAIMED, _DONE = "claimed", "done"
logger = logging.getLogger("hubsig")


class MemoryStore:
    """Remembers up to ``max_entries`` events, forgetting the oldest first.

    Only for one process: workers behind a load balancer need a shared store
    (``RedisStore``), and a restart forgets everything (``SQLiteStore``).
    """

    blocking = False
    """Its calls never wait on I/O: async receivers call it on the event loop."""

    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._announced = False

    def claim(self, keys: Sequence[str], lease: float) -> list[Claim]:
        now = self._clock()
        found = []
        with self._lock:
            if not self._announced:
                self._announced = True
                logger.info(
                    "hubsig dedupes in memory: each event once in this process only; "
                    "several workers or machines need a shared store (SQLiteStore, RedisStore)"
                )
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[1] > now:
                    found.append(Claim.DONE if entry[0] == _DONE else Claim.BUSY)
                    continue
                self._put(key, _CLAIMED, now + lease)
                found.append(Claim.CLAIMED)
        return found

    def complete(self, keys: Sequence[str], retention: float) -> None:
        expires = self._clock() + retention
        with self._lock:
            for key in keys:
                self._put(key, _DONE, expires)

    def release(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[0] == _CLAIMED:
                    del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: str, state: str, expires: float) -> None:
        self._entries[key] = (state, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
