"""The kit for ASGI frameworks: read a body, send a reply, run a flow, guard a path.

Nothing here decides anything: ``serve`` runs the delivery flow for one
request, with the ASGI ways of reading the body and answering; ``guarded``
asks the one path guard about a scope. ``hubsig.asgi``, ``hubsig.fastapi``
and ``@webhook`` are written on it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hubsig._body import NextChunk, read_body
from hubsig._config import RequestView
from hubsig._delivery import Delivery
from hubsig._delivery_of import ANSWERED, STATE_KEY
from hubsig._drive import check_store, drive
from hubsig._flow import Outcome, answered, deliver
from hubsig._headers import Headers
from hubsig._log_text import hubsig_logger
from hubsig._paths import PathGuard, application_path, must_verify, relative_path
from hubsig._receiver import Receiver
from hubsig._replies import TRACE_HEADER, Reply, failure
from hubsig._routes import ExemptRoutes
from hubsig._telemetry import handler_failed
from hubsig._trace import TraceContext, reset_current, set_current
from hubsig.errors import ClientDisconnected, ConfigurationError, ReceiveFailed

__all__ = [
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "TracedSend",
    "asgi_chunks",
    "built_by_a_running_server",
    "checking_store_at_startup",
    "guarded",
    "refuse_to_serve",
    "replay",
    "request_view",
    "run_app",
    "send_reply",
    "serve",
    "store_ready",
]

Scope = MutableMapping[str, Any]
"""An ASGI connection scope."""
Message = MutableMapping[str, Any]
"""An ASGI event message."""
Receive = Callable[[], Awaitable[Message]]
"""An ASGI ``receive`` callable."""
Send = Callable[[Message], Awaitable[None]]
"""An ASGI ``send`` callable."""
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""Any ASGI application; loose on purpose, so each framework's own scope types fit."""

logger = hubsig_logger("hubsig")
_TRACE_HEADER = TRACE_HEADER.lower().encode("latin-1")


async def serve(
    receiver: Receiver,
    scope: Scope,
    receive: Receive,
    send: Send,
    handle: Callable[[Delivery, TracedSend], Awaitable[Outcome]],
) -> None:
    """Answer one request on a guarded path: the flow decides, this reads and sends.

    ``handle`` runs the app or handler on the verified delivery, given the
    ``send`` that adds the trace header; every response carries the trace id.
    """
    headers = Headers(scope["headers"])
    trace = TraceContext.from_headers(headers)
    traced = TracedSend(send, trace)
    token = set_current(trace)
    try:
        reply = await drive(
            deliver(receiver, request_view(scope, headers), trace, time.monotonic()),
            lambda check: read_body(check, asgi_chunks(receive)),
            lambda delivery: handle(delivery, traced),
            store_blocks=receiver.store_blocks,
        )
    except ClientDisconnected:
        return  # nobody is left to answer (read_body said so in the log)
    except ReceiveFailed as failed:  # the framework's to answer, as without hubsig
        raise failed.__cause__ or failed from None
    finally:
        reset_current(token)
    if reply is None:
        if traced.holding:
            await traced.flush()  # the app's own answer, held until its events were recorded
    else:
        traced.drop()
        await send_reply(send, reply)  # hubsig's own replies carry the trace id already


def guarded(guard: PathGuard, scope: Scope, exempt: ExemptRoutes | None) -> bool:
    """Whether an ASGI request must be verified (``must_verify``): its path below
    ``root_path``, and in full; one that looks exempt passes only if the app's router,
    asked with this scope, sends it to an exempt route (``exempt``, see ``hubsig._routes``)."""
    if guard.guards_everything:
        return True
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    return must_verify(
        guard,
        relative_path(path, root),
        path,
        lambda: exempt is not None and exempt.confirm(scope, root),
    )


def request_view(scope: Scope, headers: Headers) -> RequestView:
    """What a secret resolver sees of an ASGI request: its path relative to the mount point."""
    path = application_path(scope["path"], scope.get("root_path") or "")
    return RequestView(scope["method"], path, headers)


def asgi_chunks(receive: Receive) -> NextChunk:
    """The body's chunks as ASGI ``http.request`` messages bring them, for ``read_body``;
    an ``http.disconnect`` raises ``ClientDisconnected``, and whatever ``receive`` raises
    itself (a framework's body limit) ``ReceiveFailed``, for ``serve`` to raise again."""

    async def next_chunk() -> tuple[bytes, bool]:
        try:
            message = await receive()
        except Exception as error:  # the server's or framework's own refusal (a body limit)
            raise ReceiveFailed from error
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        return message.get("body", b""), not message.get("more_body", False)

    return next_chunk


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a whole ``Reply`` as ASGI start and body messages."""
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


class TracedSend:
    """``send`` with the trace id added to the response headers (unless the app set one),
    remembering whether a response has started, and its status.

    After ``hold()`` the app's messages are kept instead of sent, until
    ``flush()`` sends them or ``drop()`` forgets them: with a store, the
    app's answer must not reach the sender before its events are recorded
    (a crash in between would acknowledge work that never committed), and
    if recording fails the flow's own answer replaces it.
    """

    __slots__ = ("_held", "_send", "_trace_id", "started", "status")

    def __init__(self, send: Send, trace: TraceContext) -> None:
        self._send = send
        self._trace_id = trace.trace_id.encode("latin-1")
        self._held: list[Message] | None = None
        self.started = False
        self.status = 0

    def hold(self) -> None:
        self._held = []

    @property
    def holding(self) -> bool:
        """Whether the app's messages are being kept instead of sent."""
        return self._held is not None

    async def flush(self) -> None:
        held, self._held = self._held or [], None
        for message in held:
            await self._send(message)

    def drop(self) -> None:
        self._held = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            for name, _ in headers:
                if name.lower() == _TRACE_HEADER:
                    break
            else:  # the app did not set one
                headers.append((_TRACE_HEADER, self._trace_id))
                message = {**message, "headers": headers}
        if self._held is not None:
            self._held.append(message)
            return
        await self._send(message)


async def run_app(
    app: ASGIApp, scope: Scope, receive: Receive, send: TracedSend, delivery: Delivery
) -> Outcome:
    """Run ``app`` on the verified delivery, for ``serve``'s ``handle``: its body replayed,
    the delivery where ``delivery_of`` finds it, its answer held while there are claims
    to settle; a 2xx is success. An app that fails before it answers gets the 500
    ``EventsResponse`` (after, the server sees the exception)."""
    # A fresh state for this request: a server that shares one dict across
    # requests must not let another request find this delivery in it.
    state = scope["state"] = {**scope.get("state", {}), STATE_KEY: delivery}
    if delivery.claims is not None:
        send.hold()  # answered once its events are recorded (see TracedSend)
    try:
        await app(scope, replay(delivery.fresh_body(), receive), send)
    except Exception:
        if send.started:
            raise
        logger.exception("the app failed on a delivery trace_id=%s", delivery.trace.trace_id)
        handler_failed(sys.exc_info()[1] or RuntimeError())
        return Outcome(False, failure(delivery.trace))
    finally:
        # A server keeps the scope until the connection's next request (uvicorn does),
        # so an idle keep-alive connection would keep the delivery, its body included,
        # and the collector would walk its records again and again.
        state[STATE_KEY] = ANSWERED
    return answered(send.status)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the verified body once, then defers to the real one."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def built_by_a_running_server() -> bool:
    """Whether an object is being built inside a running event loop (lazily, by a server)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def checking_store_at_startup(receiver: Receiver, receive: Receive, send: Send) -> Receive:
    """``receive`` for a lifespan scope that checks an async store at ``lifespan.startup``.

    A store that can never work fails the start-up (``lifespan.startup.failed``,
    so the server exits) instead of failing each delivery; servers or apps
    without lifespan get the same check before the first delivery.
    """

    async def checked() -> Message:
        message = await receive()
        if message["type"] == "lifespan.startup" and not await store_ready(receiver, send):
            raise ConfigurationError("the delivery store can never work (see the log)")
        return message

    return checked


async def store_ready(receiver: Receiver, send: Send) -> bool:
    """Check an async store at ``lifespan.startup``; if it can never work, log why, send
    ``lifespan.startup.failed`` (so the server exits) and return False."""
    try:
        await check_store(receiver)
    except ConfigurationError as error:
        logger.error("hubsig cannot start: %s", error)
        await send({"type": "lifespan.startup.failed", "message": str(error)})
        return False
    return True


async def refuse_to_serve(
    error: ConfigurationError, scope: Scope, receive: Receive, send: Send
) -> None:
    """An app whose configuration failed: the server must not start, nor serve."""
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": str(error)})
        return
    logger.error("refusing a request: hubsig is misconfigured: %s", error)
    if scope["type"] == "http":
        await send_reply(send, failure(TraceContext.from_headers(scope.get("headers", []))))
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1011})
