"""FastAPI's route-level doors: a router whose routes verify, their route class, a dependency.

The recipe is the router: ``webhooks = verified_router(secret=...)`` verifies
every request to its routes before FastAPI solves their parameters, with the
middleware's store semantics (see ``verified_route``, its route class, which
also serves one route on the app through ``route_class_override``); a route
takes its delivery as ``delivery: Verified``.

The dependency guards one route of any router:
``delivery: Annotated[Delivery, Depends(VerifiedDelivery(secret=...))]``
gives the route the verified delivery; the raw body is ``delivery.body``,
and ``hubsig.delivery_of(request)`` finds it too. A refused delivery raises
``DeliveryRejected``, an ``HTTPException`` with the refusal's status and the
trace id header, so FastAPI answers it even with no handler installed;
``app.add_exception_handler(DeliveryRejected, rejected_response)`` makes the
body the seed's ``EventsResponse`` shape, as the middleware sends.

Each event is processed once, as through every adapter: the events are
claimed in the store (in memory unless ``store=`` names another, ``None``
to turn it off) before the route runs, and settled on FastAPI's function
exit stack, after the route has returned and before its response is sent:
a route that returns completes them (in the store's transaction, if it
took one), a route that raises (``HTTPException`` included) releases them
for the sender's retry. The dependency cannot see a response the route
returns, so a route that fails must raise, not return a 5xx response
(the middleware, which sees the status, releases on any non-2xx). A
delivery whose events were all processed is answered 200 with its ids
(``DeliveryAcknowledged``) without running the route. Needs FastAPI
(``pip install 'hubsig[fastapi]'``), 0.121 or newer for the dependency with a store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hubsig import parse_events_response
from hubsig.errors import ClientDisconnected, ConfigurationError, ReceiveFailed
from hubsig.kit import (
    ANSWERED,
    STATE_KEY,
    TRACE_HEADER,
    Delivery,
    DeliveryCheck,
    Flow,
    Headers,
    Outcome,
    Receiver,
    Reply,
    TraceContext,
    WebhookConfig,
    WebhookSettings,
    config_from,
    deliver,
    delivery_of,
    drive,
    failure,
    logger,
    read_body,
)
from hubsig.kit.asgi import TracedSend, request_view, run_app, serve

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "DeliveryAcknowledged",
    "DeliveryRejected",
    "Verified",
    "VerifiedDelivery",
    "rejected_response",
    "verified_route",
    "verified_router",
]

ADAPTER = "hubsig.fastapi.VerifiedDelivery"
ROUTE_ADAPTER = "hubsig.fastapi.verified_route"
ROUTER_ADAPTER = "hubsig.fastapi.verified_router"
_KEPT_HEADERS = frozenset({"retry-after", "allow"})
"""What a refusal's answer must keep even through FastAPI's own exception handler."""


class DeliveryRejected(HTTPException):
    """A refused delivery; ``reply`` is the full ``EventsResponse`` answer."""

    def __init__(self, reply: Reply, trace: TraceContext) -> None:
        message = parse_events_response(reply.body).message
        headers = {name: value for name, value in reply.headers if name in _KEPT_HEADERS}
        super().__init__(reply.status, message, {**headers, TRACE_HEADER: trace.trace_id})
        self.reply = reply


class DeliveryAcknowledged(DeliveryRejected):
    """A delivery whose events were all processed already: answered 200 with its ids,
    without running the route (``rejected_response`` answers it too)."""


def _answer(reply: Reply, trace: TraceContext) -> DeliveryRejected:
    if 200 <= reply.status < 300:
        return DeliveryAcknowledged(reply, trace)
    return DeliveryRejected(reply, trace)


class VerifiedDelivery:
    """Verify the request and return its ``Delivery``, its events claimed; takes the
    middleware's settings except ``paths`` and ``exempt`` (the router chose the route)."""

    def __init__(
        self, *, config: WebhookConfig | None = None, **settings: Unpack[WebhookSettings]
    ) -> None:
        self.config = _one_route_config(config, settings, ADAPTER)
        self._receiver = Receiver.of(self.config)

    async def __call__(self, request: Request, response: Response) -> Delivery:
        headers = Headers(request.scope["headers"])
        trace = TraceContext.from_headers(headers)
        response.headers[TRACE_HEADER] = trace.trace_id  # FastAPI merges it into the answer
        verified: list[Delivery] = []

        async def keep(delivery: Delivery) -> Outcome:
            verified.append(delivery)
            return Outcome(True)

        view = request_view(request.scope, headers)
        flow = deliver(self._receiver, view, trace, time.monotonic())
        try:
            if self._receiver.store is None:
                read = lambda check: _read(check, request)  # noqa: E731
                reply = await drive(flow, read, keep, store_blocks=False)
                if reply is not None:
                    raise _answer(reply, trace)
                delivery = verified[0]
            else:
                delivery = await self._claimed(flow, request, trace)
        except ClientDisconnected:
            # Nobody is left to answer (read_body said so at INFO); FastAPI needs an
            # exception to stop the route, and the server drops its answer.
            raise HTTPException(400, "the client disconnected mid-body") from None
        except ReceiveFailed as failed:  # FastAPI's to answer (its 413), as without hubsig
            raise failed.__cause__ or failed from None
        # Where delivery_of(request) finds it, as after the middleware, until the response
        # and its background tasks are done: a server may keep the scope longer (uvicorn
        # until the connection's next request), and with it the delivery and its body.
        state = request.scope["state"] = {**request.scope.get("state", {}), STATE_KEY: delivery}
        stack = request.scope.get("fastapi_inner_astack")  # the request's own exit stack
        if isinstance(stack, AsyncExitStack):
            stack.callback(state.__setitem__, STATE_KEY, ANSWERED)
        return delivery

    async def _claimed(self, flow: Flow, request: Request, trace: TraceContext) -> Delivery:
        """Run the flow up to the route in a task of its own; it waits there, with the
        events claimed (and renewed), until the function exit stack settles them."""
        stack = request.scope.get("fastapi_function_astack")
        if not isinstance(stack, AsyncExitStack):
            raise ConfigurationError(
                f"{ADAPTER}: this FastAPI has no function exit stack to settle the events on "
                "(FastAPI 0.121 or newer is needed with a store); or give store=None"
            )
        loop = asyncio.get_running_loop()
        verified: asyncio.Future[Delivery] = loop.create_future()
        ran: asyncio.Future[Outcome] = loop.create_future()

        async def hold(delivery: Delivery) -> Outcome:
            verified.set_result(delivery)
            return await ran

        driving = loop.create_task(
            drive(
                flow,
                lambda check: _read(check, request),
                hold,
                store_blocks=self._receiver.store_blocks,
            )
        )
        try:
            await asyncio.wait((verified, driving), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled: the flow's task must not wait for ever
            driving.cancel()
            raise
        if not verified.done():
            reply = driving.result()  # what it raised (a disconnect) is raised here
            assert reply is not None  # no route ran, so the flow answered
            raise _answer(reply, trace)

        async def settle(
            kind: type[BaseException] | None, error: BaseException | None, _: TracebackType | None
        ) -> bool:
            ran.set_result(Outcome(error is None))
            reply = await driving
            if error is None and reply is not None:  # the events could not be recorded
                raise _answer(reply, trace)
            return False

        stack.push_async_exit(settle)
        return verified.result()


def _one_route_config(
    config: WebhookConfig | None, settings: WebhookSettings, adapter: str
) -> WebhookConfig:
    """The configuration of a route-level door: ``paths`` and ``exempt`` cannot apply."""
    checked = config_from(config, settings, adapter)
    for name in ("paths", "exempt"):
        if getattr(checked, name) is not None:
            raise ConfigurationError(
                f"{adapter}: {name}= cannot apply to a route-level door: the router has "
                "chosen the route, and hubsig guards it whole"
            )
    return checked


async def _read(check: DeliveryCheck, request: Request) -> bytes:
    """The body through Starlette's ``Request.stream`` (so ``request.body()`` still works)."""
    stream = request.stream()

    async def next_chunk() -> tuple[bytes, bool]:
        try:
            chunk = await anext(stream, None)
        except ClientDisconnect:
            raise ClientDisconnected from None
        except Exception as error:  # the framework's own refusal (its body limit)
            raise ReceiveFailed from error
        return (b"", True) if chunk is None else (chunk, False)

    return await read_body(check, next_chunk)


async def rejected_response(request: Request, error: Exception) -> Response:
    """Exception handler that answers ``DeliveryRejected`` with its ``EventsResponse`` body."""
    assert isinstance(error, DeliveryRejected)
    reply = error.reply
    return Response(reply.body, reply.status, headers=dict(reply.headers))


RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]
"""What ``APIRoute.get_route_handler`` returns: the route's request-to-response function."""

_VERIFIED_BY = "hubsig.verified_by"
"""The scope key a verified route's ``handle`` sets (to its receiver) while FastAPI runs
the route; the route's handler refuses a request without it."""


def verified_route(
    *, config: WebhookConfig | None = None, **settings: Unpack[WebhookSettings]
) -> type[APIRoute]:
    """An ``APIRoute`` class whose routes answer only verified deliveries: the route
    class of ``verified_router``, and one route's on the app
    (``add_api_route(..., route_class_override=verified_route(secret=...))``).

    Every request the router sends to one of its routes is verified before
    FastAPI reads a parameter; a refusal is answered with its
    ``EventsResponse`` and the route never runs. The events are claimed
    before the route runs (in memory unless ``store=`` names another,
    ``None`` to turn it off), and the route's answer is held until they are
    settled, as behind the middleware: a 2xx completes them (in the store's
    transaction, if the route took one), any other status or an exception
    releases them for the sender's retry (an exception FastAPI does not
    handle is answered with the 500 ``EventsResponse``). A delivery whose
    events were all processed is answered 200 with its ids without running
    the route. The route takes the delivery as ``delivery: Verified`` (or
    ``hubsig.delivery_of(request)``); ``await request.body()`` is the body
    with only the events not processed yet.

    The route's ``handle`` verifies, so refusals and repeats cost FastAPI no
    request and no response object; the route's handler, which FastAPI
    builds through ``get_route_handler`` for the route in place and for each
    router that includes it, refuses (500, one ERROR line) any request that
    did not pass that ``handle``: a FastAPI that reached the route another
    way fails closed. Takes the middleware's settings except ``paths`` and
    ``exempt`` (the router has chosen the route). The routes of one class
    share one receiver: one store and one in-flight budget.
    """
    receiver = Receiver.of(_one_route_config(config, settings, ROUTE_ADAPTER))

    class VerifiedRoute(APIRoute):
        """A FastAPI route whose requests hubsig verifies before the route runs."""

        async def handle(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["method"] not in (self.methods or ()):
                await super().handle(scope, receive, send)  # FastAPI's 405; never the route
                return
            route = super().handle

            async def verified(scope: Any, receive: Any, send: Any) -> None:
                scope[_VERIFIED_BY] = receiver
                try:
                    await route(scope, receive, send)
                finally:
                    del scope[_VERIFIED_BY]

            async def run(delivery: Delivery, traced: TracedSend) -> Outcome:
                return await run_app(verified, scope, receive, traced, delivery)

            await serve(receiver, scope, receive, send, run)

        def get_route_handler(self) -> RouteHandler:
            return _verified_only(receiver, super().get_route_handler())

    return VerifiedRoute


def verified_router(
    *, config: WebhookConfig | None = None, **settings: Unpack[WebhookSettings]
) -> APIRouter:
    """An ``APIRouter`` whose every route answers only verified deliveries: its path
    operations are made by ``verified_route``'s class, and whatever that class cannot
    guard (a Starlette route, a websocket, a mount, another router included, a path
    operation of another class) is refused when it is added (``ConfigurationError``).
    Give it a prefix, tags or dependencies where the app includes it."""
    return _VerifiedRouter(route_class=verified_route(config=config, **settings))


class _VerifiedRouter(APIRouter):
    """An ``APIRouter`` that takes only routes of its own verifying class."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        override = options.get("route_class_override")
        if override is not None and not issubclass(override, self.route_class):
            _unverifiable(f"{path!r} with route_class_override={override.__name__}")
        super().add_api_route(path, endpoint, **options)

    def add_route(self, path: str, *arguments: Any, **options: Any) -> None:
        _unverifiable(f"the Starlette route {path!r}")

    def add_websocket_route(self, path: str, *arguments: Any, **options: Any) -> None:
        _unverifiable(f"the websocket route {path!r}")

    def add_api_websocket_route(self, path: str, *arguments: Any, **options: Any) -> None:
        _unverifiable(f"the websocket route {path!r}")

    def mount(self, path: str, *arguments: Any, **options: Any) -> None:
        _unverifiable(f"the mount {path!r}")

    def include_router(self, router: APIRouter, *arguments: Any, **options: Any) -> None:
        _unverifiable("another router (include it beside this one, in the app)")


def _unverifiable(what: str) -> NoReturn:
    raise ConfigurationError(
        f"{ROUTER_ADAPTER}: {what} cannot be added to a verified router: hubsig could not "
        "verify its requests. Put it on another router."
    )


def _verified_only(receiver: Receiver, route: RouteHandler) -> RouteHandler:
    """``route``, refusing any request that did not pass the verifying ``handle``."""

    async def verified_only(request: Request) -> Response:
        if request.scope.get(_VERIFIED_BY) is receiver:
            return await route(request)
        logger.error(
            "refusing a request that reached a verified route without passing its handle(); "
            "this FastAPI routes differently from what hubsig knows: report it path=%s",
            request.scope.get("path"),
        )
        reply = failure(TraceContext.from_headers(Headers(request.scope["headers"])))
        return Response(reply.body, reply.status, headers=dict(reply.headers))

    return verified_only


async def _verified_delivery(request: Request) -> Delivery:
    """The delivery hubsig verified for this request (``NotVerified``, logged, if none)."""
    return delivery_of(request)


Verified = Annotated[Delivery, Depends(_verified_delivery)]
"""A route parameter's type for its verified delivery: ``delivery: Verified``."""
