"""Deadlines for body reads: ``asyncio.timeout_at``'s behaviour at a fraction of its cost.

Every delivery reads its body under a deadline, and almost every read ends
long before it. ``asyncio.timeout_at`` schedules and cancels a timer per
read (about 4 µs); here all the reads of one event loop share one timer, set
for the earliest deadline among them, so a read costs two dict operations.
When the timer fires, every read past its deadline has its task cancelled,
and leaving the ``with`` block turns that cancellation, and only that one,
into ``TimeoutError``; a cancellation from elsewhere (the client went away,
the server shuts down) passes through as ``CancelledError``, as with asyncio's.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref

__all__ = ["Deadline"]


class Deadline:
    """A timeout ending at ``deadline``, a ``time.monotonic()`` instant: ``with`` or
    ``async with`` it around the reads (inside a task)."""

    __slots__ = ("_cancelling", "_deadline", "_expired", "_task", "_watch", "when")

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._expired = False

    def __enter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.when = loop.time() + self._deadline - time.monotonic()
        self._watch = _watch_of(loop)
        self._watch.add(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self._watch.discard(self)
        if self._expired:
            # Balance our cancel; raise TimeoutError only if nobody else cancels too.
            cancelled = kind is not None and issubclass(kind, asyncio.CancelledError)
            if self._task.uncancel() <= self._cancelling and cancelled:
                raise TimeoutError from error

    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self.__exit__(kind, error, tb)

    def expire(self) -> None:
        """Called by the loop's timer once ``when`` has passed."""
        self._expired = True
        self._task.cancel()


class _Watch:
    """The reads under way on one event loop, and one timer for the earliest deadline."""

    __slots__ = ("_due", "_reads", "_timer")

    def __init__(self) -> None:
        self._reads: dict[Deadline, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._due = math.inf

    def add(self, deadline: Deadline) -> None:
        self._reads[deadline] = None
        if deadline.when < self._due:  # rare: deadlines mostly come in the order they end
            self._set_timer(deadline.when)

    def discard(self, deadline: Deadline) -> None:
        self._reads.pop(deadline, None)

    def _set_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = when
        self._timer = asyncio.get_running_loop().call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        self._timer = None
        self._due = math.inf
        now = asyncio.get_running_loop().time()
        earliest = math.inf
        for deadline in list(self._reads):
            if deadline.when <= now:
                del self._reads[deadline]
                deadline.expire()
            elif deadline.when < earliest:
                earliest = deadline.when
        if earliest < math.inf:
            self._set_timer(earliest)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()
_last: tuple[object, _Watch | None] = (None, None)
"""The loop asked last and its watch: one loop per thread is the rule, so this is the usual
answer (a tuple, so another thread reads it whole)."""


def _watch_of(loop: asyncio.AbstractEventLoop) -> _Watch:
    global _last
    last_loop, watch = _last
    if last_loop is loop and watch is not None:
        return watch
    try:
        watch = _watches.get(loop)
        if watch is None:
            watch = _watches[loop] = _Watch()
    except TypeError:  # a loop that cannot be weakly referenced: a watch of its own per read
        return _Watch()
    _last = (loop, watch)
    return watch
