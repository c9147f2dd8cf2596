"""Saying so when a claim may have lapsed: the leases a process's attempts hold, as it knows them.

A store whose server can stall (Redis under ``DEBUG SLEEP``, a long fork, a
saturated network) cannot always renew a claim before its lease ends; another
worker may then reclaim the event and run it too. hubsig cannot prevent that
without a transaction around the handler's own effects, but it must never
happen silently. So each attempt's lease is tracked here, from the local
clock, and every event whose claim this attempt may have lost is logged at
ERROR, once, with its key and the delivery's trace id:

- a renewal or completion that finds another attempt's claim (or, on the
  first try, another attempt's completion) over the event: it was taken;
- a renewal or completion that fails after the lease ended: it may be.

The other attempt's run is marked ``redelivered`` (its claim found this
one's expired). The lines are written when the store learns it, which
during a stall is when the server answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from hubsig._trace import current_trace

__all__ = ["TAKEN", "UNCONFIRMED", "Leases"]

logger = logging.getLogger("hubsig")

TAKEN = (
    "another attempt took the claim on an event while this one ran its handler (the lease "
    "ended before a renewal was confirmed): the event may run again elsewhere, marked "
    "redelivered event=%s trace_id=%s"
)
UNCONFIRMED = (
    "the lease on an event ended before the store confirmed its renewal: the event may run "
    "again elsewhere, marked redelivered event=%s trace_id=%s"
)
_WATCHED = 10_000
"""Attempts tracked at most; the oldest are forgotten first (each is normally settled)."""


class _Attempt:
    __slots__ = ("announced", "completions", "deadline", "trace_id")

    def __init__(self, deadline: float, trace_id: str) -> None:
        self.deadline = deadline
        self.trace_id = trace_id
        self.completions = 0
        self.announced: set[str] = set()


class Leases:
    """The lease deadlines of the attempts that won claims in this process, by token.

    Each ``*_sent`` time is read before the call went out, so a deadline is
    never later than the server's.
    """

    __slots__ = ("_attempts", "_clock", "_lock")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._attempts: dict[str, _Attempt] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._clock()

    def claimed(self, token: str, won: bool, lease: float, sent: float) -> None:
        """Track ``token`` if its claim won any event."""
        if not won:
            return
        trace = current_trace()
        attempt = _Attempt(sent + lease, trace.trace_id if trace is not None else "-")
        with self._lock:
            if len(self._attempts) >= _WATCHED:
                del self._attempts[next(iter(self._attempts))]
            self._attempts[token] = attempt

    def renewed(
        self, token: str, keys: Sequence[str], kept: Sequence[bool], lease: float, sent: float
    ) -> None:
        """A renewal's answer: ``kept[i]`` says the claim on ``keys[i]`` was still this one's.

        Ignored once a completion was sent: the completion's answer decides.
        """
        attempt = self._attempts.get(token)
        if attempt is None or attempt.completions:
            return
        lost = [key for key, held in zip(keys, kept, strict=True) if not held]
        if lost:
            self._announce(attempt, lost, TAKEN)
            return
        attempt.deadline = sent + lease

    def unconfirmed(self, token: str, keys: Sequence[str]) -> None:
        """A renewal or completion failed: announce ``keys`` if the lease has ended."""
        attempt = self._attempts.get(token)
        if attempt is not None and self._clock() >= attempt.deadline:
            self._announce(attempt, keys, UNCONFIRMED)

    def completing(self, token: str) -> bool:
        """Note a completion being sent; whether it is the attempt's first."""
        attempt = self._attempts.get(token)
        if attempt is None:
            return False
        attempt.completions += 1
        return attempt.completions == 1

    def completed(self, token: str, keys: Sequence[str], taken: Sequence[bool]) -> None:
        """A completion's answer: ``taken[i]`` says another attempt had claimed ``keys[i]``."""
        attempt = self.settled(token)
        if attempt is not None:
            self._announce(attempt, [k for k, t in zip(keys, taken, strict=True) if t], TAKEN)

    def settled(self, token: str) -> _Attempt | None:
        """Stop tracking ``token`` (completed or released); what was tracked."""
        with self._lock:
            return self._attempts.pop(token, None)

    def __len__(self) -> int:
        return len(self._attempts)

    @staticmethod
    def _announce(attempt: _Attempt, keys: Sequence[str], message: str) -> None:
        for key in keys:
            if key not in attempt.announced:
                attempt.announced.add(key)
                logger.error(message, key, attempt.trace_id)
