"""``@webhook``: a plain function becomes a complete, verified webhook endpoint.

The endpoint is an ASGI app (mount it as a Starlette/FastAPI route) and has
a WSGI app at ``.wsgi``; both are the adapters' middleware around a small
app that calls your handler, so verification, tracing and rejections behave
exactly as with the middleware. The handler gets the parsed
``EventsPayload`` and, if it asks, the ``Delivery`` (see ``_Call.of`` for how
a handler asks), may return the ids it handled (default: every entity id),
and is answered with the seed's ``EventsResponse``: 200, or 500 when it raises.

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
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from hubsig import Event, EventsPayload, EventsResponse, EventType, InteractionSubtype, MediaType
from hubsig.errors import ConfigurationError, HandlerAnswerError
from hubsig.kit import (
    Delivery,
    Outcome,
    Receiver,
    WebhookConfig,
    WebhookSettings,
    acknowledge,
    config_from,
    failure,
    handler_failed,
    json_reply,
    logger,
    run_to_completion,
)
from hubsig.kit import asgi as asgi_io
from hubsig.kit import wsgi as wsgi_io

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["WebhookEndpoint", "webhook"]


Handler = Callable[..., Any]
"""Takes the ``EventsPayload`` and maybe the ``Delivery``, sync or async; may return the ids."""
EventHandler = Callable[..., Any]
"""Takes the ``Event`` and maybe the ``Delivery``, sync or async; called once per match."""
_HandlerT = TypeVar("_HandlerT", bound=Callable[..., Any])
_KNOWN: dict[str, type[Enum]] = {
    "event_type": EventType,
    "media_type": MediaType,
    "interaction_subtype": InteractionSubtype,
}


class _Gets(Enum):
    """What hubsig passes to one parameter of a handler."""

    FIRST = "first"  # the EventsPayload, or the Event for a handler given to .on()
    DELIVERY = "delivery"
    NOTHING = "nothing"  # left to its default


_NO_KEYWORDS: dict[str, Any] = {}  # never mutated: ``**`` unpacking copies it


@dataclass(frozen=True, slots=True)
class _Call:
    """A handler as checked once at registration: what to pass it, and how."""

    handler: Handler
    positional: tuple[Any, ...]  # a _Gets member per slot, or a default for a skipped one
    keywords: tuple[tuple[str, _Gets], ...]
    is_async: bool

    @classmethod
    def of(cls, handler: Handler, role: str, first: type = EventsPayload) -> _Call:
        """Check ``handler`` and decide, by its parameters, what each one gets.

        A parameter annotated ``Delivery`` gets the delivery and one annotated
        ``first`` (``EventsPayload``, or ``Event`` for a route) gets that,
        wherever it stands, positional or keyword-only, with or without a
        default (``Optional`` and string annotations included). Unannotated
        (or ``Any``/``object``), a parameter named ``delivery`` gets the
        delivery, and the first other positional one gets ``first`` unless
        an annotation took it. Other parameters are left to their defaults.
        Raises ``TypeError`` naming the parameter for a required one hubsig
        cannot fill, a type given twice, or nothing to pass at all.
        """
        if not callable(handler):
            raise TypeError(f"{role} must be callable, not {type(handler).__name__}")
        positional, keywords = _plan(handler, role, first)
        return cls(handler, positional, keywords, is_async_callable(handler))

    @property
    def name(self) -> str:
        return getattr(self.handler, "__qualname__", type(self.handler).__qualname__)

    def arguments(
        self, first: object, delivery: Delivery
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments of one call."""
        slots = self.positional
        if slots is _FIRST_ONLY:  # the usual shapes, without a loop
            args: tuple[Any, ...] = (first,)
        elif slots is _FIRST_AND_DELIVERY:
            args = (first, delivery)
        else:
            args = tuple(_value(slot, first, delivery) for slot in slots)
        if not self.keywords:
            return args, _NO_KEYWORDS
        return args, {name: _value(gets, first, delivery) for name, gets in self.keywords}


_FIRST_ONLY = (_Gets.FIRST,)
_FIRST_AND_DELIVERY = (_Gets.FIRST, _Gets.DELIVERY)


def _value(slot: Any, first: object, delivery: Delivery) -> Any:
    if slot is _Gets.FIRST:
        return first
    if slot is _Gets.DELIVERY:
        return delivery
    return slot  # a skipped positional parameter's own default


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
            wsgi_io.refuse_async_store(self._receiver, "WebhookEndpoint.wsgi")
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
            call = _Call.of(handler, f"the handler for {event_type or 'every event'}", Event)
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
            for call, (args, kwargs) in self._calls(delivery):
                if call.is_async:
                    result = await call.handler(*args, **kwargs)
                else:
                    result = await asyncio.to_thread(call.handler, *args, **kwargs)
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
            for call, (args, kwargs) in self._calls(delivery):
                result = call.handler(*args, **kwargs)
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
            handler_failed(sys.exc_info()[1] or RuntimeError())
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

    def _calls(
        self, delivery: Delivery
    ) -> Iterable[tuple[_Call, tuple[tuple[Any, ...], dict[str, Any]]]]:
        """The handler calls one delivery makes: the main handler, then each matching route."""
        if self._main is not None:
            payload: EventsPayload = delivery.payload
            yield self._main, self._main.arguments(payload, delivery)
        for event in delivery.payload.events:
            for route in self._routes:
                if route.matches(event):
                    yield route.call, route.call.arguments(event, delivery)


def webhook(
    handler: None = None, /, **settings: Unpack[WebhookSettings]
) -> Callable[[Handler], WebhookEndpoint]:
    """Decorate a handler to make it a ``WebhookEndpoint``: ``@hubsig.webhook(secret=...)``.

    Takes the same settings as the middleware (``secret=``, ``scheme=``,
    ``max_body_size=``, ``store=``, ...) except ``paths``. The handler gets
    the payload in the parameter annotated ``EventsPayload`` and the delivery
    in the one annotated ``Delivery``, in any order; unannotated, the first
    gets the payload and one named ``delivery`` the delivery. Raises
    ``TypeError`` when used without parentheses or for a handler with a
    required parameter it cannot fill, and ``ConfigurationError`` for a bad
    setting, all when the module is imported.
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


def _plan(
    handler: Handler, role: str, first: type
) -> tuple[tuple[Any, ...], tuple[tuple[str, _Gets], ...]]:
    """What ``_Call.of`` decided: a value per positional slot, and the keyword arguments."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return (_Gets.FIRST,), ()  # a builtin without a signature: call it with the first alone
    every = signature.parameters.values()
    parameters = [p for p in every if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    annotations = _annotations(handler, parameters)
    refused = _Refusal(handler, signature, role, first)
    claims = {p.name: _claim(annotations[p.name], first) for p in parameters}
    for name, claim in claims.items():
        if isinstance(claim, str):
            raise refused(f"its parameter {name!r} {claim}")
        if claim is None and name == "delivery":
            claims[name] = _Gets.DELIVERY
    unclaimed = [p.name for p in positional if claims[p.name] is None]
    if unclaimed and _Gets.FIRST not in claims.values():
        claims[unclaimed[0]] = _Gets.FIRST  # unannotated (or Any, object): the first by place
    gets = {name: c if isinstance(c, _Gets) else _Gets.NOTHING for name, c in claims.items()}
    for wanted, what in ((_Gets.FIRST, first.__name__), (_Gets.DELIVERY, "Delivery")):
        takers = [name for name, value in gets.items() if value is wanted]
        if len(takers) > 1:
            raise refused(
                f"its parameters {' and '.join(map(repr, takers))} all ask for the {what}"
            )
    for parameter in parameters:
        if gets[parameter.name] is _Gets.NOTHING and parameter.default is parameter.empty:
            raise refused(f"hubsig cannot fill its required parameter {parameter.name!r}")
    slots: list[Any] = [gets[p.name] for p in positional]
    while slots and slots[-1] is _Gets.NOTHING:
        slots.pop()
    variadic = any(p.kind is p.VAR_POSITIONAL for p in every)
    if not slots and variadic and _Gets.FIRST not in gets.values():
        slots = [_Gets.FIRST]  # def handle(*args): the first comes as args[0]
    if not slots and all(value is _Gets.NOTHING for value in gets.values()):
        raise refused("it takes no parameter hubsig can pass anything to")
    keywords = tuple(
        (p.name, gets[p.name])
        for p in parameters
        if p.kind is p.KEYWORD_ONLY and gets[p.name] is not _Gets.NOTHING
    )
    defaults = [p.default for p in positional]  # what a skipped positional slot is given
    filled = tuple(defaults[i] if s is _Gets.NOTHING else s for i, s in enumerate(slots))
    for shape in (_FIRST_ONLY, _FIRST_AND_DELIVERY):  # shared, so a call tells them by identity
        if len(filled) == len(shape) and all(a is b for a, b in zip(filled, shape, strict=True)):
            return shape, keywords
    return filled, keywords


_UNCLAIMED: tuple[object, ...] = (inspect.Parameter.empty, Any, object)
"""Annotations that say nothing about what a parameter is for: it goes by position or name."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A ``TypeError`` for a handler hubsig cannot call: what is wrong, then what is allowed."""

    handler: Handler
    signature: inspect.Signature
    role: str
    first: type

    def __call__(self, problem: str) -> TypeError:
        name = getattr(self.handler, "__qualname__", type(self.handler).__qualname__)
        noun = "payload" if self.first is EventsPayload else "event"
        return TypeError(
            f"{self.role} {name}{self.signature}: {problem}. hubsig passes the {noun} (to the "
            f"parameter annotated {self.first.__name__}, or else the first positional one "
            "without an annotation) and the Delivery (to the parameter annotated Delivery, "
            "or else named delivery), in any order; any other parameter needs a default"
        )


def _claim(annotation: object, first: type) -> _Gets | str | None:
    """What a parameter's annotation asks for: a ``_Gets`` (``NOTHING`` for another type,
    refused later if the parameter has no default), ``None`` when it says nothing, or the
    reason it is refused outright (the Event where the EventsPayload goes, or the reverse)."""
    if annotation in _UNCLAIMED:
        return None
    annotation = _without_none(annotation)
    if isinstance(annotation, str):
        annotation = _BY_NAME.get(_bare_name(annotation), annotation)
        if annotation in _UNCLAIMED:
            return None
    if annotation is Delivery:
        return _Gets.DELIVERY
    if annotation is first:
        return _Gets.FIRST
    if annotation in (Event, EventsPayload):  # the other of the two
        return (
            f"is annotated {annotation.__name__}: a handler given to .on() gets one Event at a time"
            if first is Event
            else f"is annotated {annotation.__name__}: the main handler gets the EventsPayload "
            "(use @endpoint.on(...) for a handler per Event)"
        )
    return _Gets.NOTHING


_BY_NAME: dict[str, object] = {
    "Delivery": Delivery,
    "EventsPayload": EventsPayload,
    "Event": Event,
    "Any": Any,
    "object": object,
}
"""Names a string annotation that cannot be evaluated is read by (``TYPE_CHECKING`` imports)."""


def _without_none(annotation: object) -> object:
    """``X | None``, ``Optional[X]`` and ``Annotated[X, ...]`` read as ``X``."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _bare_name(text: str) -> str:
    """``"hubsig.Delivery | None"`` or ``"Optional[Delivery]"`` as ``"Delivery"``."""
    text = text.strip().strip("'\"")
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", text)
    if optional:
        text = optional.group(1)
    parts = [part.strip().strip("'\"") for part in text.split("|")]
    named = [part for part in parts if part != "None"]
    if len(named) == 1:
        text = named[0]
    match = re.fullmatch(r"(?:hubsig\.|typing\.)?(\w+)", text)
    return match.group(1) if match else text


def _annotations(handler: Handler, parameters: list[inspect.Parameter]) -> dict[str, object]:
    """Each parameter's annotation, string ones (``from __future__ import annotations``)
    resolved with ``typing.get_type_hints`` where they can be, else kept as text."""
    annotations = {p.name: p.annotation for p in parameters}
    if not any(isinstance(a, str) for a in annotations.values()):
        return annotations
    function = _function_of(handler)
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # a name imported under TYPE_CHECKING, say: one by one, below
        hints = {}
    namespace = getattr(inspect.unwrap(function), "__globals__", {})
    for name, annotation in annotations.items():
        if isinstance(annotation, str):
            annotations[name] = hints[name] if name in hints else _evaluated(annotation, namespace)
    return annotations


def _function_of(handler: Handler) -> Any:
    """The function whose annotations ``inspect.signature(handler)`` shows."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    if isinstance(handler, type):
        return typing.cast(Any, handler).__init__
    if not inspect.isroutine(handler):
        return type(handler).__call__
    return handler


def _evaluated(text: str, namespace: dict[str, Any]) -> object:
    """One string annotation evaluated in the handler's module, or the text if it cannot be."""
    try:
        return typing.get_type_hints(types.SimpleNamespace(__annotations__={"a": text}), namespace)[
            "a"
        ]
    except Exception:  # any failure leaves the text, read by name
        return text


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
