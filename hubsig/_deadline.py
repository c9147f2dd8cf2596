"""Deadlines for body reads: ``asyncio.timeout_at``'s behaviour in fewer steps.

Every delivery reads its body under a deadline, and almost every read ends
long before it, so the deadline's own cost is paid on every request:
``asyncio.timeout_at`` takes about 4 µs (its state machine and a rescheduling
step around the timer); this takes a little over half of that, with one
timer per read and nothing shared between reads or event loops.
Leaving the ``with`` block turns the timer's cancellation, and only that
one, into ``TimeoutError``; a cancellation from elsewhere (the client went
away, the server shuts down) passes through as ``CancelledError``.

A timer is only needed for a read that waits: ``Started`` runs a read up to
its first wait, so a body already in the server's buffer when the app
starts (most of them) is read with no timer at all, and only a read that
must wait is awaited under the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Deadline", "Started"]

_T = TypeVar("_T")


class Deadline:
    """A timeout ending at ``deadline``, a ``time.monotonic()`` instant: ``with`` it
    (or ``async with`` it) around the reads, inside a task."""

    __slots__ = ("_cancelling", "_deadline", "_expired", "_task", "_timer")

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
        when = loop.time() + self._deadline - time.monotonic()
        self._timer = loop.call_at(when, self._expire)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> None:
        self._timer.cancel()
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

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()


class Started(Generic[_T]):
    """``awaitable`` run up to its first wait: ``done`` with its ``result`` when it ended
    without waiting; else awaiting this carries on from there, as awaiting it would have.

    What it raises before its first wait is raised here."""

    __slots__ = ("_steps", "_waiting_on", "done", "result")

    def __init__(self, awaitable: Awaitable[_T]) -> None:
        steps = awaitable.__await__()
        try:
            self._waiting_on = steps.send(None)
        except StopIteration as ended:
            self.done = True
            self.result: _T = ended.value
            return
        self.done = False
        self._steps = steps

    def __await__(self) -> Generator[Any, Any, _T]:
        if self.done:
            return self.result
        steps, waiting_on = self._steps, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as error:  # a cancellation, the deadline's included
                try:
                    waiting_on = steps.throw(error)
                except StopIteration as ended:
                    return ended.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting_on = steps.send(sent)
                except StopIteration as ended:
                    return ended.value  # type: ignore[no-any-return]
