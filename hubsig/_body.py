"""Reading a body: one async reader and one blocking reader, for every adapter.

Each protocol only says how to get the next chunk and whether it is the last
(``ClientDisconnected`` when the client goes away); the reader feeds every
chunk to the ``DeliveryCheck`` (hash, size limit, in-flight budget) and
keeps the deadline, with a timer only once a read has to wait. A client
that goes away mid-body gets one answer everywhere: nothing more is sent
to it, and one INFO line says so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from hubsig._check import DeliveryCheck
from hubsig._deadline import Deadline, Started
from hubsig._log_text import hubsig_logger
from hubsig.errors import ClientDisconnected

__all__ = ["NextChunk", "NextChunkSync", "read_body", "read_body_sync"]

NextChunk = Callable[[], Awaitable[tuple[bytes, bool]]]
"""The next piece of a body, and whether it is the last (an empty last piece is fine)."""
NextChunkSync = Callable[[], tuple[bytes, bool]]

logger = hubsig_logger("hubsig")


async def read_body(check: DeliveryCheck, next_chunk: NextChunk) -> bytes:
    """The whole body, each chunk fed to ``check``, before ``check.deadline``.

    Raises ``check.timed_out()`` past the deadline, ``ClientDisconnected``
    (logged) when the client goes away, or what ``check.feed`` raises.
    """
    chunks: list[bytes] = []
    last = False
    try:
        started = Started(next_chunk())
        first: Started[tuple[bytes, bool]] | None = started
        if started.done:  # it was there already: nothing waited, so no timer was needed
            chunk, last = started.result
            check.feed(chunk)
            chunks.append(chunk)
            first = None
        if not last:
            with Deadline(check.deadline):
                while not last:
                    chunk, last = await (first or next_chunk())
                    first = None
                    check.feed(chunk)
                    chunks.append(chunk)
    except TimeoutError:
        raise check.timed_out() from None
    except ClientDisconnected:
        _went_away(check)
        raise
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_body_sync(check: DeliveryCheck, next_chunk: NextChunkSync) -> bytes:
    """``read_body`` for blocking code: the deadline is checked between reads, so a read
    that blocks is bounded by the server's own timeout (gunicorn's ``--timeout``)."""
    chunks: list[bytes] = []
    last = False
    try:
        while not last:
            chunk, last = next_chunk()
            if time.monotonic() > check.deadline:
                raise check.timed_out()
            check.feed(chunk)
            chunks.append(chunk)
    except ClientDisconnected:
        _went_away(check)
        raise
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _went_away(check: DeliveryCheck) -> None:
    logger.info("client disconnected mid-body trace_id=%s", check.trace.trace_id)
