"""The default store: dicts in this process, safe across threads."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hubsig._dedupe import Claim

__all__ = ["MemoryStore"]

logger = logging.getLogger("hubsig")


class MemoryStore:
    """Remembers each processed event for ``retention``, at most ``max_entries`` of them.

    What it forgets, and when: a processed event after its retention, or
    sooner when ``max_entries`` newer ones were processed since (oldest
    first). A live claim (an event being processed now) is never forgotten
    before its lease ends, however many events arrive meanwhile. Only for one
    process: workers behind a load balancer need a shared store
    (``RedisStore``), and a restart forgets everything (``SQLiteStore``).
    """

    blocking = False
    """Its calls never wait on I/O: async receivers call it on the event loop."""

    def __init__(
        self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._done: OrderedDict[str, float] = OrderedDict()  # key -> expiry
        self._claims: dict[str, tuple[float, str]] = {}  # key -> (lease expiry, token)
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._announced = False

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        now = self._clock()
        found = []
        with self._lock:
            if not self._announced:
                self._announced = True
                logger.info(
                    "hubsig dedupes in memory: each event once in this process only; "
                    "several workers or machines need a shared store (SQLiteStore, RedisStore, "
                    "PostgresStore), and store=None turns deduplication off"
                )
            if len(self._claims) > self._max:  # claims of workers that died, long expired
                self._claims = {k: claim for k, claim in self._claims.items() if claim[0] > now}
            for key in keys:
                if self._done.get(key, 0.0) > now:
                    found.append(Claim.DONE)
                elif (held := self._claims.get(key)) is not None and held[0] > now:
                    found.append(Claim.BUSY)
                else:
                    self._done.pop(key, None)
                    self._claims[key] = (now + lease, token)
                    found.append(Claim.CLAIMED if held is None else Claim.RECLAIMED)
        return found

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                held = self._claims.get(key)
                if held is not None and held[1] != token and held[0] > now:
                    continue  # another worker holds it now: theirs to settle
                self._claims.pop(key, None)
                self._done[key] = now + retention
                self._done.move_to_end(key)
            while len(self._done) > self._max:
                self._done.popitem(last=False)

    def release(self, keys: Sequence[str], token: str) -> None:
        with self._lock:
            for key in keys:
                held = self._claims.get(key)
                if held is not None and held[1] == token:
                    del self._claims[key]

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        until = self._clock() + lease
        with self._lock:
            for key in keys:
                held = self._claims.get(key)
                if held is not None and held[1] == token:
                    self._claims[key] = (until, token)

    def __len__(self) -> int:
        return len(self._done) + len(self._claims)
