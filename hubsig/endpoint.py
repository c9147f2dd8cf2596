"""``@webhook``: a plain function becomes a complete, verified webhook endpoint.

The endpoint is an ASGI app (mount it as a Starlette/FastAPI route) and has
a WSGI app at ``.wsgi``; both are the adapters' middleware around a small
app that calls your handler, so verification, tracing and rejections behave
exactly as with the middleware. The handler gets the parsed
``EventsPayload`` (and the ``Delivery`` if it takes a second argument), may
return the ids it handled (default: every entity id), and is answered with
the seed's ``EventsResponse``: 200, or 500 when it raises.

Each event is processed once: the endpoint claims every event in its
``DeliveryStore`` (in memory unless ``store=`` names another) before the
handlers run. A delivery whose events were all processed is acknowledged
with the same ids without calling them; of a partly new one, only the new
events reach them; one whose event another worker is processing gets 409,
so the sender retries. A failed handler releases its claims (the retry
processes them); a crashed worker's claims expire after the lease.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar

from hubsig import asgi, wsgi
from hubsig.access import ENVIRON_KEY, STATE_KEY
from hubsig.config import WebhookConfig, run_to_completion
from hubsig.dedupe import Admission, StoreUnavailable
from hubsig.models import Event, EventsPayload
from hubsig.once import OnceGate
from hubsig.receiver import Delivery, Reply, acknowledge, failure, in_progress
from hubsig.stores.memory import MemoryStore

__all__ = ["WebhookEndpoint", "webhook"]

logger = logging.getLogger("hubsig")

Handler = Callable[..., Any]
"""``(payload)`` or ``(payload, delivery)``, sync or async; may return the ids handled."""
EventHandler = Callable[..., Any]
"""``(event)`` or ``(event, delivery)``, sync or async; called once per matching event."""
_HandlerT = TypeVar("_HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Route:
    event: str | None
    media_type: str | None
    subtype: str | None
    handler: EventHandler
    wants_delivery: bool

    def matches(self, event: Event) -> bool:
        entity = event.entity
        return (
            _same(self.event, event.event_type)
            and _same(self.media_type, entity.media_type if entity else None)
            and _same(self.subtype, entity.interaction_subtype if entity else None)
        )


class WebhookEndpoint:
    """A verified webhook endpoint: call it as an ASGI app, or use ``.wsgi``."""

    def __init__(self, handler: Handler | None = None, *, config: WebhookConfig) -> None:
        _refuse_path_filter(config)
        self.config = config
        self._handler = handler
        self._handler_wants_delivery = _takes_two(handler) if handler else False
        self._routes: list[_Route] = []
        store = config.store if config.store is not None else MemoryStore()
        self._gate = OnceGate(store, config.dedupe)
        # The endpoint settles claims itself, after its handlers: the middleware it
        # wraps only verifies, or every event would be claimed twice.
        verifying = config.without_store()
        self._asgi = asgi.HubSignatureMiddleware(self._asgi_app, config=verifying)
        self.wsgi: wsgi.WSGIApp = wsgi.HubSignatureMiddleware(self._wsgi_app, config=verifying)
        """The same endpoint as a WSGI app (Flask, Django, any WSGI server)."""

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
            return
        await self._asgi(scope, receive, send)

    def on(
        self,
        event: str | Enum | None = None,
        *,
        media_type: str | Enum | None = None,
        subtype: str | Enum | None = None,
    ) -> Callable[[_HandlerT], _HandlerT]:
        """Register a handler for the events that match every filter given.

        ``@endpoint.on("STARTED", media_type="chat")`` calls the function once
        per matching event, after the endpoint's main handler if it has one.
        """

        def register(handler: _HandlerT) -> _HandlerT:
            route = _Route(
                _wire(event), _wire(media_type), _wire(subtype), handler, _takes_two(handler)
            )
            self._routes.append(route)
            return handler

        return register

    async def _asgi_app(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        delivery: Delivery = scope["state"][STATE_KEY]
        gate = self._gate
        try:
            admitted = await gate.admit(delivery)
        except StoreUnavailable:
            await asgi.send_reply(send, _store_failed(delivery))
            return
        if admitted.busy or admitted.fresh is None:
            await asgi.send_reply(send, _without_handler(admitted, delivery))
            return
        try:
            ids = await self._handle_async(replace(delivery, payload=admitted.fresh))
        except Exception:
            reply = self._failed(delivery)
            await gate.settle(admitted, succeeded=False)
        else:
            try:
                await gate.settle(admitted, succeeded=True)
                reply = acknowledge(ids, delivery)
            except StoreUnavailable:
                reply = _store_failed(delivery)
        await asgi.send_reply(send, reply)

    def _wsgi_app(
        self, environ: wsgi.WSGIEnvironment, start_response: wsgi.StartResponse
    ) -> Iterable[bytes]:
        delivery: Delivery = environ[ENVIRON_KEY]
        gate = self._gate
        try:
            admitted = gate.admit_sync(delivery)
        except StoreUnavailable:
            return wsgi.send_reply(start_response, _store_failed(delivery))
        if admitted.busy or admitted.fresh is None:
            return wsgi.send_reply(start_response, _without_handler(admitted, delivery))
        try:
            ids = self._handle_sync(replace(delivery, payload=admitted.fresh))
        except Exception:
            reply = self._failed(delivery)
            gate.settle_sync(admitted, succeeded=False)
        else:
            try:
                gate.settle_sync(admitted, succeeded=True)
                reply = acknowledge(ids, delivery)
            except StoreUnavailable:
                reply = _store_failed(delivery)
        return wsgi.send_reply(start_response, reply)

    async def _handle_async(self, delivery: Delivery) -> Iterable[str] | None:
        ids = None
        for handler, arguments in self._calls(delivery):
            if inspect.iscoroutinefunction(handler):
                result = await handler(*arguments)
            else:
                result = await asyncio.to_thread(handler, *arguments)
            if handler is self._handler:
                ids = result
        return ids

    def _handle_sync(self, delivery: Delivery) -> Iterable[str] | None:
        ids = None
        for handler, arguments in self._calls(delivery):
            result = handler(*arguments)
            if inspect.isawaitable(result):
                result = run_to_completion(result)
            if handler is self._handler:
                ids = result
        return ids

    def _calls(self, delivery: Delivery) -> Iterable[tuple[Handler, tuple[Any, ...]]]:
        """The handler calls one delivery makes: the main handler, then each matching route."""
        if self._handler is not None:
            payload: EventsPayload = delivery.payload
            yield self._handler, _arguments(payload, delivery, self._handler_wants_delivery)
        for event in delivery.payload.events:
            for route in self._routes:
                if route.matches(event):
                    yield route.handler, _arguments(event, delivery, route.wants_delivery)

    def _failed(self, delivery: Delivery) -> Reply:
        logger.exception("webhook handler failed trace_id=%s", delivery.trace.trace_id)
        return failure(delivery.trace)


def webhook(
    secret: Any,
    **settings: Any,
) -> Callable[[Handler], WebhookEndpoint]:
    """Decorate a handler to make it a ``WebhookEndpoint``.

    Takes the same settings as the middleware (``secret=``,
    ``max_body_size=``, ``header_name=``, ``strict=``, ...) except ``paths``.
    """
    config = WebhookConfig(secret=secret, **settings)
    _refuse_path_filter(config)

    def decorate(handler: Handler) -> WebhookEndpoint:
        return WebhookEndpoint(handler, config=config)

    return decorate


def _refuse_path_filter(config: WebhookConfig) -> None:
    if config.paths is not None:
        raise TypeError("an endpoint guards every request it gets; mount it where it belongs")


def _without_handler(admitted: Admission, delivery: Delivery) -> Reply:
    """Every event already processed: acknowledge with the same ids; one in progress: 409."""
    if admitted.busy:
        return in_progress(delivery.trace)
    logger.info("duplicate delivery acknowledged trace_id=%s", delivery.trace.trace_id)
    return acknowledge(None, delivery)


def _store_failed(delivery: Delivery) -> Reply:
    """The store could not answer: 500, so the sender retries and nothing is lost or doubled."""
    logger.exception("the delivery store failed trace_id=%s", delivery.trace.trace_id)
    return failure(delivery.trace)


def _arguments(first: object, delivery: Delivery, wants_delivery: bool) -> tuple[Any, ...]:
    return (first, delivery) if wants_delivery else (first,)


def _takes_two(handler: Callable[..., Any]) -> bool:
    """Whether a handler accepts a second positional argument (the ``Delivery``)."""
    parameters = [
        parameter
        for parameter in inspect.signature(handler).parameters.values()
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(
        parameter.kind is parameter.VAR_POSITIONAL
        for parameter in inspect.signature(handler).parameters.values()
    )
    return len(parameters) >= 2 or variadic


def _wire(value: str | Enum | None) -> str | None:
    return None if value is None else str(value.value if isinstance(value, Enum) else value)


def _same(wanted: str | None, actual: str | Enum | None) -> bool:
    return wanted is None or wanted == _wire(actual)


async def _answer_lifespan(receive: asgi.Receive, send: asgi.Send) -> None:
    """Serve an endpoint on its own under a server: acknowledge start-up and shut-down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
