"""``@webhook``: a plain function becomes a complete, verified webhook endpoint.

The endpoint is an ASGI app (mount it as a Starlette/FastAPI route) and has
a WSGI app at ``.wsgi``; both are the adapters' middleware around a small
app that calls your handler, so verification, tracing and rejections behave
exactly as with the middleware. The handler gets the parsed
``EventsPayload`` (and the ``Delivery`` if it takes a second argument), may
return the ids it handled (default: every entity id), and is answered with
the seed's ``EventsResponse``: 200, or 500 when it raises.

Each event is processed once: the endpoint claims every event in its
``DeliveryStore`` (in memory unless ``store=`` names another, or ``None``) before the
handlers run. A delivery whose events were all processed is acknowledged
with the same ids without calling them; of a partly new one, only the new
events reach them; one whose event another worker is processing gets 409,
so the sender retries. A failed handler releases its claims (the retry
processes them); a crashed worker's claims expire after the lease.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from hubsig import _asgi_io as asgi_io
from hubsig import _telemetry
from hubsig import _wsgi_io as wsgi_io
from hubsig._config import WebhookConfig, WebhookSettings, config_from, run_to_completion
from hubsig._flow import Outcome, Receiver
from hubsig._log_text import hubsig_logger
from hubsig._models import Event, EventsPayload, EventType, InteractionSubtype, MediaType
from hubsig._receiver import Delivery, acknowledge, failure, json_reply
from hubsig._response import EventsResponse
from hubsig.errors import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["WebhookEndpoint", "webhook"]

logger = hubsig_logger("hubsig")

Handler = Callable[..., Any]
"""``(payload)`` or ``(payload, delivery)``, sync or async; may return the ids handled."""
EventHandler = Callable[..., Any]
"""``(event)`` or ``(event, delivery)``, sync or async; called once per matching event."""
_HandlerT = TypeVar("_HandlerT", bound=Callable[..., Any])
_KNOWN: dict[str, type[Enum]] = {
    "event_type": EventType,
    "media_type": MediaType,
    "interaction_subtype": InteractionSubtype,
}


class HandlerAnswerError(TypeError):
    """A handler returned something that is not an answer: the delivery fails, loudly."""


@dataclass(frozen=True, slots=True)
class _Call:
    """A handler as checked once at registration: how to call it."""

    handler: Handler
    wants_delivery: bool
    is_async: bool

    @classmethod
    def of(cls, handler: Handler, role: str) -> _Call:
        if not callable(handler):
            raise TypeError(f"{role} must be callable, not {type(handler).__name__}")
        return cls(handler, _wants_delivery(handler, role), is_async_callable(handler))

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", type(self.handler).__qualname__)


@dataclass(frozen=True, slots=True)
class _Route:
    event_type: str | None
    media_type: str | None
    interaction_subtype: str | None
    call: _Call

    def matches(self, event: Event) -> bool:
        entity = event.entity
        return (
            _same(self.event_type, event.event_type)
            and _same(self.media_type, entity.media_type if entity else None)
            and _same(self.interaction_subtype, entity.interaction_subtype if entity else None)
        )


_ACKNOWLEDGED = Outcome(True, acknowledge=True)  # outcomes are immutable: one serves all


class WebhookEndpoint:
    """A verified webhook endpoint: call it as an ASGI app, or use ``.wsgi``."""

    def __init__(self, handler: Handler | None = None, *, config: WebhookConfig) -> None:
        _refuse_path_filter(config)
        self.config = config
        self._main = _Call.of(handler, "the handler") if handler is not None else None
        self._routes: list[_Route] = []
        self._receiver = Receiver.of(config)
        self._wsgi: wsgi_io.WSGIApp | None = None

    @property
    def wsgi(self) -> wsgi_io.WSGIApp:
        """The same endpoint as a WSGI app (Flask, Django, any WSGI server).

        Raises ``ConfigurationError`` when the store is an asyncio one, which
        a WSGI server has no event loop to await.
        """
        if self._wsgi is None:
            wsgi_io.refuse_async_store(self.config, "WebhookEndpoint.wsgi")
            self._wsgi = self._wsgi_app
        return self._wsgi

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI interface (typed loosely, so every framework's ASGI types fit)."""
        if scope["type"] == "lifespan":
            await _answer_lifespan(self._receiver, receive, send)
        elif scope["type"] == "http":
            await asgi_io.serve(self._receiver, scope, receive, send, self._handle_async)
        else:
            await send({"type": "websocket.close", "code": 1003})

    def on(
        self,
        event_type: str | Enum | None = None,
        *,
        media_type: str | Enum | None = None,
        interaction_subtype: str | Enum | None = None,
        allow_unknown: bool = False,
    ) -> Callable[[_HandlerT], _HandlerT]:
        """Register a handler for the events that match every filter given.

        ``@endpoint.on("STARTED", media_type="chat")`` calls the function once
        per matching event, after the endpoint's main handler if it has one.
        Filters are checked against the known values now (``"started"`` or
        ``"Chat"`` would never match); ``allow_unknown=True`` accepts a value
        hubsig does not know yet. Raises ``ValueError`` for an unknown value
        and ``TypeError`` for a handler hubsig cannot call.
        """
        filters = {
            "event_type": event_type,
            "media_type": media_type,
            "interaction_subtype": interaction_subtype,
        }
        wire = {name: _wire(value) for name, value in filters.items()}
        if not allow_unknown:
            for name, value in wire.items():
                _check_known(name, value)

        def register(handler: _HandlerT) -> _HandlerT:
            call = _Call.of(handler, f"the handler for {event_type or 'every event'}")
            route = _Route(
                wire["event_type"], wire["media_type"], wire["interaction_subtype"], call
            )
            self._routes.append(route)
            return handler

        return register

    def _wsgi_app(
        self, environ: wsgi_io.WSGIEnvironment, start_response: wsgi_io.StartResponse
    ) -> Iterable[bytes]:
        return wsgi_io.serve(
            self._receiver, environ, start_response, lambda d, _: (self._handle_sync(d), ())
        )

    async def _handle_async(self, delivery: Delivery, send: object = None) -> Outcome:
        try:
            returned = None
            for call, arguments in self._calls(delivery):
                if call.is_async:
                    result = await call.handler(*arguments)
                else:
                    result = await asyncio.to_thread(call.handler, *arguments)
                    if inspect.isawaitable(result):
                        result = await result
                if call is self._main:
                    returned = result
            return self._outcome(returned, delivery)
        except Exception:
            return self._failed(delivery)

    def _handle_sync(self, delivery: Delivery) -> Outcome:
        try:
            returned = None
            for call, arguments in self._calls(delivery):
                result = call.handler(*arguments)
                if inspect.isawaitable(result):
                    result = run_to_completion(result)
                if call is self._main:
                    returned = result
            return self._outcome(returned, delivery)
        except Exception:
            return self._failed(delivery)

    def _outcome(self, returned: object, delivery: Delivery) -> Outcome:
        """The handlers' success (or a reported failure) as the answer to send.

        The reply acknowledges the whole delivery's ids (``delivery`` holds only
        the fresh events; the flow acknowledges repeats by themselves).
        """
        answer = self._answer(returned, delivery)
        if answer is None:
            return _ACKNOWLEDGED
        if answer.code != 0:
            logger.warning(
                "webhook handler answered code %s trace_id=%s", answer.code, delivery.trace.trace_id
            )
            return Outcome(False, json_reply(500, answer.to_json(), delivery.trace))
        return Outcome(True, acknowledge(answer.ids, delivery, answer.message))

    def _failed(self, delivery: Delivery) -> Outcome:
        """A handler raised, or returned something that is no answer: 500, claims released."""
        if not isinstance(sys.exc_info()[1], HandlerAnswerError):
            logger.exception("webhook handler failed trace_id=%s", delivery.trace.trace_id)
            _telemetry.handler_failed(sys.exc_info()[1] or RuntimeError())
        return Outcome(False, failure(delivery.trace))

    def _answer(self, returned: object, delivery: Delivery) -> EventsResponse | None:
        """The main handler's return value as the answer, checked before any claim settles.

        ``None`` acknowledges every entity id; an iterable of ids, those ids;
        an ``EventsResponse`` is sent as it is (a non-zero code is a failure).
        Anything else is the handler's mistake: logged at ERROR, then a 500.
        """
        if returned is None:
            return None
        if isinstance(returned, EventsResponse):
            return returned
        if not isinstance(returned, (str, bytes, bytearray, Mapping)) and isinstance(
            returned, Iterable
        ):
            ids = tuple(returned)
            if all(isinstance(entity_id, str) for entity_id in ids):
                return EventsResponse(ids=ids)
        name = self._main.name if self._main else "handler"
        logger.error(
            "webhook handler %s returned %s; it must return None, an iterable of entity ids "
            "(str) or an EventsResponse trace_id=%s",
            name,
            type(returned).__name__,
            delivery.trace.trace_id,
        )
        raise HandlerAnswerError(name)

    def _calls(self, delivery: Delivery) -> Iterable[tuple[_Call, tuple[Any, ...]]]:
        """The handler calls one delivery makes: the main handler, then each matching route."""
        if self._main is not None:
            payload: EventsPayload = delivery.payload
            yield self._main, _arguments(payload, delivery, self._main.wants_delivery)
        for event in delivery.payload.events:
            for route in self._routes:
                if route.matches(event):
                    yield route.call, _arguments(event, delivery, route.call.wants_delivery)


def webhook(
    handler: None = None, /, **settings: Unpack[WebhookSettings]
) -> Callable[[Handler], WebhookEndpoint]:
    """Decorate a handler to make it a ``WebhookEndpoint``: ``@hubsig.webhook(secret=...)``.

    Takes the same settings as the middleware (``secret=``, ``scheme=``,
    ``max_body_size=``, ``store=``, ...) except ``paths``. Raises
    ``TypeError`` when used without parentheses and ``ConfigurationError``
    for a bad setting, both when the module is imported.
    """
    if handler is not None:
        raise TypeError(
            "use @hubsig.webhook(secret=...) with parentheses: the decorator needs its settings"
        )
    config = config_from(None, settings, "hubsig.webhook")
    _refuse_path_filter(config)

    def decorate(handler: Handler) -> WebhookEndpoint:
        return WebhookEndpoint(handler, config=config)

    return decorate


def is_async_callable(handler: object) -> bool:
    """Whether calling ``handler`` returns a coroutine: a coroutine function, one wrapped in
    ``functools.partial``, or an object whose ``__call__`` is one."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 (the method itself is what is checked)
    )


def _wants_delivery(handler: Handler, role: str) -> bool:
    """Whether ``handler`` takes the ``Delivery`` as its second positional argument.

    Only a second positional parameter without a default, or one annotated
    ``Delivery``, gets it: ``def handle(payload, dry_run=False)`` does not.
    Raises ``TypeError`` for a handler that cannot be called with the
    payload alone or with the payload and the delivery.
    """
    try:
        parameters = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return False  # a builtin without a signature: call it with the payload alone
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    required_keywords = [
        p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    if required_keywords or (not positional and not variadic):
        raise TypeError(
            f"{role} {getattr(handler, '__qualname__', handler)!r} must take the payload as its "
            "first positional argument (and optionally the Delivery as its second); "
            f"it takes {inspect.signature(handler)}"
        )
    wants = len(positional) >= 2 and (
        positional[1].default is positional[1].empty or _is_delivery(positional[1].annotation)
    )
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 2 or (len(required) == 2 and not wants):
        raise TypeError(
            f"{role} {getattr(handler, '__qualname__', handler)!r} requires more arguments than "
            f"the payload and the Delivery: {inspect.signature(handler)}"
        )
    return wants


def _is_delivery(annotation: object) -> bool:
    """``Delivery``, ``Delivery | None``, ``hubsig.Delivery``, as a type or as text."""
    if isinstance(annotation, str):
        return re.search(r"(?<![\w.])(hubsig\.)?Delivery\b", annotation) is not None
    return annotation is Delivery or Delivery in typing.get_args(annotation)


def _check_known(name: str, value: str | None) -> None:
    if value is None:
        return
    known = [member.value for member in _KNOWN[name]]
    if value not in known:
        close = [k for k in known if k.lower() == value.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        raise ValueError(
            f"on({name}={value!r}) would never match: hubsig knows no such value{hint} "
            "(allow_unknown=True for a value newer than hubsig)"
        )


def _refuse_path_filter(config: WebhookConfig) -> None:
    if config.paths is not None:
        raise ConfigurationError(
            "an endpoint guards every request it gets; mount it where it belongs (no paths=)"
        )


def _arguments(first: object, delivery: Delivery, wants_delivery: bool) -> tuple[Any, ...]:
    return (first, delivery) if wants_delivery else (first,)


def _wire(value: str | Enum | None) -> str | None:
    return None if value is None else str(value.value if isinstance(value, Enum) else value)


def _same(wanted: str | None, actual: str | Enum | None) -> bool:
    return wanted is None or wanted == _wire(actual)


async def _answer_lifespan(
    receiver: Receiver, receive: asgi_io.Receive, send: asgi_io.Send
) -> None:
    """Serve an endpoint on its own under a server: check the store at start-up (failing
    it if the store can never work), and acknowledge start-up and shut-down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if not await asgi_io.store_ready(receiver, send):
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
