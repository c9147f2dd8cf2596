"""A bound on the body bytes one receiver holds across all the requests it is reading.

Bodies are read before they can be authenticated, so without a bound any
client that can open connections can make the process hold
``connections * max_body_size`` bytes. Each request reserves what it
declares (or each chunk as it arrives) and gives it back when it ends; a
reservation past the limit is refused, and the sender is told to retry.
"""

from __future__ import annotations

import threading

__all__ = ["BodyBudget"]


class BodyBudget:
    """Bytes reserved by in-flight bodies, at most ``limit``; safe across threads."""

    __slots__ = ("_lock", "_used", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        return self._used

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes if they fit; ``False`` (nothing taken) if they do not."""
        with self._lock:
            if self._used + size > self.limit:
                return False
            self._used += size
            return True

    def release(self, size: int) -> None:
        """Give back bytes taken by ``reserve``."""
        with self._lock:
            self._used -= size

    def __repr__(self) -> str:
        return f"BodyBudget(used={self._used}, limit={self.limit})"
