"""Pure ASGI middleware: verify every delivery on the guarded paths before the app sees it.

Works around any ASGI app (Starlette, FastAPI, Quart, a bare callable) and
needs no framework itself. The body is hashed as it is received, refused as
soon as it passes the limit, and replayed to the app unchanged after the
signature matched, so the app reads it as if nothing stood in between. The
verified ``Delivery`` is at ``scope["state"]["hubsig"]``, which Starlette
and FastAPI show as ``request.state.hubsig``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hubsig.access import STATE_KEY
from hubsig.config import RequestView, WebhookConfig, WebhookSettings, config_from
from hubsig.dedupe import Admission, StoreUnavailable
from hubsig.errors import ConfigurationError, WebhookError
from hubsig.headers import Headers
from hubsig.once import OnceGate
from hubsig.paths import application_path
from hubsig.receiver import (
    TRACE_HEADER,
    Delivery,
    DeliveryCheck,
    Reply,
    acknowledge,
    failure,
    in_progress,
    rejection,
)
from hubsig.trace import TraceContext, reset_current, set_current

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ASGIApp", "HubSignatureMiddleware", "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""Any ASGI application; loose on purpose, so each framework's own scope types fit."""

logger = logging.getLogger("hubsig")
_TRACE_HEADER = TRACE_HEADER.lower().encode("latin-1")


class ClientDisconnected(Exception):
    """The client went away before the whole body arrived; nothing is left to answer."""


class HubSignatureMiddleware:
    """Refuses unsigned or badly signed deliveries on the guarded paths; passes the rest.

    Takes a ready ``config=WebhookConfig(...)`` or its settings as keywords
    (``secret=``, ``paths=``, ``max_body_size=``, ...). Websocket and
    lifespan messages, and paths not guarded, go straight to the app. If the
    app raises on a verified delivery before it started its response, the
    sender gets the same 500 ``EventsResponse`` as from ``@webhook``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: WebhookConfig | None = None,
        **settings: Unpack[WebhookSettings],
    ) -> None:
        self.app = app
        self._broken: ConfigurationError | None = None
        try:
            self.config = config_from(config, settings, "hubsig.asgi.HubSignatureMiddleware")
        except ConfigurationError as error:
            if not _built_by_a_running_app():
                raise
            # Built lazily inside a running server (Starlette's add_middleware builds
            # on the lifespan start-up), where uvicorn would swallow the exception and
            # serve anyway: fail the start-up instead, and refuse every request.
            logger.error("hubsig cannot start: %s", error)
            self._broken = error
            return
        self._gate = OnceGate.for_config(self.config)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI interface (typed loosely, so every framework's ASGI types fit)."""
        if self._broken is not None:
            await _refuse_to_serve(self._broken, scope, receive, send)
            return
        if scope["type"] != "http" or not self.config.guards_scope(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope["headers"])
        trace = TraceContext.from_headers(headers)
        token = set_current(trace)
        try:
            await self._guarded(scope, headers, trace, receive, _TracedSend(send, trace))
        finally:
            reset_current(token)

    async def _guarded(
        self,
        scope: Scope,
        headers: Headers,
        trace: TraceContext,
        receive: Receive,
        send: _TracedSend,
    ) -> None:
        check: DeliveryCheck | None = None
        try:
            check = DeliveryCheck(self.config, request_view(scope, headers), trace)
            delivery = await receive_delivery(check, receive)
        except WebhookError as error:
            await send_reply(send, rejection(error, trace, self.config))
            return
        except ClientDisconnected:
            logger.info("client disconnected mid-body trace_id=%s", trace.trace_id)
            return
        except Exception:
            logger.exception("could not check the delivery trace_id=%s", trace.trace_id)
            await send_reply(send, failure(trace))
            return
        finally:
            if check is not None:
                check.release()
        admitted = None
        if self._gate is not None:
            try:
                admitted = await self._gate.admit(delivery)
            except StoreUnavailable:
                logger.exception("the delivery store failed trace_id=%s", trace.trace_id)
                await send_reply(send, failure(trace))
                return
            if admitted.busy or admitted.fresh is None:
                reply = in_progress(trace) if admitted.busy else acknowledge(None, delivery)
                await send_reply(send, reply)
                return
            delivery = replace(delivery, payload=admitted.fresh)
        # A fresh state for this request: a server that shares one dict across
        # requests must not let another request find this delivery in it.
        scope["state"] = {**scope.get("state", {}), STATE_KEY: delivery}
        try:
            await self.app(scope, _replay(delivery.body, receive), send)
        except Exception:
            if admitted is not None:
                await self._gate.settle(admitted, succeeded=False)  # type: ignore[union-attr]
            if send.started:
                raise
            logger.exception("the app failed on a delivery trace_id=%s", trace.trace_id)
            await send_reply(send, failure(trace))
            return
        if admitted is not None:
            await self._settle(admitted, send.status == 200, trace)

    async def _settle(self, admitted: Admission, succeeded: bool, trace: TraceContext) -> None:
        """After the app answered: complete the claims on a 200, release them otherwise."""
        try:
            await self._gate.settle(admitted, succeeded)  # type: ignore[union-attr]
        except StoreUnavailable:
            # The answer is sent; the claims expire with their lease.
            logger.exception("could not record processed events trace_id=%s", trace.trace_id)


def _built_by_a_running_app() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _refuse_to_serve(
    error: ConfigurationError, scope: Scope, receive: Receive, send: Send
) -> None:
    """A middleware whose configuration failed: the server must not start, nor serve."""
    if scope["type"] == "lifespan":
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.failed", "message": str(error)})
        return
    logger.error("refusing a request: hubsig is misconfigured: %s", error)
    if scope["type"] == "http":
        trace = TraceContext.from_headers(scope.get("headers", []))
        await send_reply(send, failure(trace))
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1011})


def request_view(scope: Scope, headers: Headers) -> RequestView:
    """What a secret resolver sees of an ASGI request: its path relative to the mount point."""
    path = application_path(scope["path"], scope.get("root_path") or "")
    return RequestView(scope["method"], path, headers)


async def receive_delivery(check: DeliveryCheck, receive: Receive) -> Delivery:
    """Read the body through ``check`` within its ``body_timeout``; the verified ``Delivery``.

    Raises ``BodyTimeout`` when the body takes longer, ``ClientDisconnected``
    when the client goes away, or the ``WebhookError`` ``check`` raised.
    """
    await check.start()
    try:
        async with within(check.deadline):
            body = await _read_body(check, receive)
    except TimeoutError:
        raise check.timed_out() from None
    return check.finish(body)


async def _read_body(check: DeliveryCheck, receive: Receive) -> bytes:
    chunks: list[bytes] = []
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        check.feed(chunk)
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


if sys.version_info >= (3, 11):

    def within(deadline: float) -> asyncio.Timeout:
        """A timeout ending at ``deadline``, a ``time.monotonic()`` instant."""
        loop = asyncio.get_running_loop()
        return asyncio.timeout_at(loop.time() + deadline - time.monotonic())

else:  # pragma: no cover - Python 3.10

    @contextlib.asynccontextmanager
    async def within(deadline: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = loop.call_at(loop.time() + deadline - time.monotonic(), expire)
        try:
            yield
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()


async def send_reply(send: Send, reply: Reply) -> None:
    """Send a whole ``Reply`` as ASGI start and body messages."""
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": [
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers
            ],
        }
    )
    await send({"type": "http.response.body", "body": reply.body})


class _TracedSend:
    """``send`` with the trace id added to the response headers (unless the app set one),
    remembering whether a response has started, and its status."""

    __slots__ = ("_send", "_trace_id", "started", "status")

    def __init__(self, send: Send, trace: TraceContext) -> None:
        self._send = send
        self._trace_id = trace.trace_id.encode("latin-1")
        self.started = False
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", ()))
            if not any(name.lower() == _TRACE_HEADER for name, _ in headers):
                headers.append((_TRACE_HEADER, self._trace_id))
                message = {**message, "headers": headers}
        await self._send(message)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the verified body once, then defers to the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
