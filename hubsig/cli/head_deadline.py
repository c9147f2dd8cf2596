"""``hubsig serve``'s guard against idle and slow-head connections, as uvicorn protocols.

uvicorn gives a connection no deadline before its first request head, and
its ``limit_concurrency`` counts every open connection: a thousand idle
sockets, or clients dribbling a head a byte a second, make it answer every
genuine delivery 503. Here a connection waiting for a request head (just
accepted, or idle after a response) has ``timeout`` seconds to complete it
and is closed otherwise; a head of more than ``MAX_HEAD_BYTES`` is refused
with 431 (h11 stops at 16 KiB too; httptools, without this, buffers a head
without end, a quadratic copy at that); at most ``most_waiting`` connections
wait at once (a new one closes the one that has waited longest); and the
request limit counts requests being served, never connections waiting for a
head.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional; h11 serves alone
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["MAX_HEAD_BYTES", "H11WithDeadline", "HeadDeadlines", "protocol_classes"]

MAX_HEAD_BYTES = 16 * 1024
"""h11's own limit on a request head, which uvicorn keeps; a sender's is a few hundred bytes."""
_TOO_LARGE_BODY = b"Request head is too large"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY)
)


class HeadDeadlines:
    """The connections waiting for a request head, each with the timer that closes it.

    One per server process; the protocols of its connections report to it.
    Insertion order is waiting order, so the longest waiter is the first key.
    """

    def __init__(self, timeout: float, most_waiting: int, most_requests: int) -> None:
        self.timeout = timeout
        self.most_waiting = most_waiting
        self.most_requests = most_requests
        self._waiting: dict[asyncio.Transport, asyncio.TimerHandle] = {}

    def wait(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        """``transport`` now waits for a request head: close it if none is complete in time."""
        self.arrived(transport)
        while len(self._waiting) >= self.most_waiting:
            self.close(next(iter(self._waiting)))
        self._waiting[transport] = loop.call_later(self.timeout, self.close, transport)

    def waiting(self, transport: asyncio.Transport) -> bool:
        return transport in self._waiting

    def arrived(self, transport: asyncio.Transport) -> None:
        """A head is complete (or the connection is gone): stop its timer."""
        timer = self._waiting.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def close(self, transport: asyncio.Transport) -> None:
        """Close a connection that waited too long, without waiting on a peer that reads
        nothing (a response it left unread until the deadline is dropped)."""
        self.arrived(transport)
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for ``--workers`` before any connection: each worker starts empty."""
        return {**self.__dict__, "_waiting": {}}


class _WithinLimit:
    """The app, or 503 past the limit of requests being served (this one included:
    uvicorn adds its task before the app runs). It holds no protocol, so a closed
    connection's protocol (and the body it buffered) is freed at once, not by the
    cycle collector."""

    __slots__ = ("app", "logger", "most", "tasks")

    def __init__(
        self,
        app: ASGI3Application,
        tasks: set[asyncio.Task[None]],
        most: int,
        logger: logging.Logger,
    ) -> None:
        self.app = app
        self.tasks = tasks
        self.most = most
        self.logger = logger

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if len(self.tasks) > self.most:
            self.logger.warning("Exceeded concurrency limit.")
            await service_unavailable(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Guarded:
    """What both guarded protocols add to uvicorn's: the request limit and idle waiting."""

    deadlines: HeadDeadlines
    app: ASGI3Application
    limit_concurrency: int | None
    tasks: set[asyncio.Task[None]]
    logger: logging.Logger
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any

    head_bytes: int = 0

    def _guard(self, deadlines: HeadDeadlines) -> None:
        self.deadlines = deadlines
        self.limit_concurrency = None  # uvicorn's counts connections waiting for a head too
        self.app = _WithinLimit(self.app, self.tasks, deadlines.most_requests, self.logger)

    def _wait_for_head(self) -> None:
        self.head_bytes = 0
        self.deadlines.wait(self.transport, self.loop)

    def _wait_when_idle(self) -> None:
        """After a response, a connection with no request under way waits for a head."""
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._wait_for_head()

    def _count_head(self, data: bytes) -> None:
        """Bytes the parser took without completing a head; past ``MAX_HEAD_BYTES``, 431."""
        if self.transport.is_closing() or not self.deadlines.waiting(self.transport):
            return
        self.head_bytes += len(data)
        if self.head_bytes > MAX_HEAD_BYTES:
            self.deadlines.arrived(self.transport)
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    # uvicorn's protocol methods, each extended the same way for both parsers (the protocol
    # class comes after this one in each subclass's MRO, hence ``super()``).

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        deadlines: HeadDeadlines,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self._guard(deadlines)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._count_head(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadlines.arrived(self.transport)
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._wait_when_idle()


class H11WithDeadline(_Guarded, H11Protocol):
    """uvicorn's h11 protocol under ``HeadDeadlines``."""

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # h11 parsed a request head
            self.deadlines.arrived(self.transport)


if HttpToolsProtocol is not None:

    class HttpToolsWithDeadline(_Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol under ``HeadDeadlines``."""

        def on_headers_complete(self) -> None:
            self.deadlines.arrived(self.transport)
            super().on_headers_complete()


def protocol_classes() -> dict[str, Callable[..., asyncio.Protocol]]:
    """The guarded protocols by uvicorn's names; ``auto`` is httptools when installed."""
    classes: dict[str, Callable[..., asyncio.Protocol]] = {"h11": H11WithDeadline}
    if HttpToolsProtocol is not None:
        classes["httptools"] = HttpToolsWithDeadline
    classes["auto"] = classes.get("httptools", H11WithDeadline)
    return classes
