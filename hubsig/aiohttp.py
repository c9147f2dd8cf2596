"""aiohttp: a middleware and a handler decorator, written on ``hubsig.kit`` alone.

``web.Application(middlewares=[hubsig_middleware(secret=..., exempt=[...])])``
guards every request of an app but its ``exempt`` routes (relative to where
the app is mounted with ``add_subapp``), as the other middlewares do.
``@webhook_handler(secret=...)`` guards one handler; put it beneath the
route decorator, which must register the guarded function. Either way the
body is read from the stream under the size limit and deadline, the handler
reads the verified delivery with ``hubsig.delivery_of(request)`` (and
``await request.read()`` / ``.json()`` still work), refusals get their
``EventsResponse``, and with ``store=`` each event is processed once.
Needs ``pip install 'hubsig[aiohttp]'``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import ClientPayloadError, web
from aiohttp.typedefs import Middleware

from hubsig import kit

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DELIVERY", "hubsig_middleware", "webhook_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_SIZE = 64 * 1024
logger = logging.getLogger("hubsig")  # hubsig's own logger: it escapes what it quotes
DELIVERY = web.RequestKey("hubsig.delivery", kit.Delivery)
"""Where the verified delivery is: ``request[DELIVERY]``, which ``delivery_of`` reads."""
kit.register_key(DELIVERY)


def hubsig_middleware(
    *, config: kit.WebhookConfig | None = None, **settings: Unpack[kit.WebhookSettings]
) -> Middleware:
    """An aiohttp middleware that verifies every delivery on the guarded paths."""
    receiver = kit.Receiver.of(kit.config_from(config, settings, "hubsig.aiohttp.middleware"))

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _guarded_path(receiver.config.guard, request):
            return await handler(request)
        return await _guarded(receiver, request, handler)

    return middleware


def webhook_handler(
    handler: None = None,
    /,
    *,
    config: kit.WebhookConfig | None = None,
    **settings: Unpack[kit.WebhookSettings],
) -> Callable[[Handler], Handler]:
    """Decorate one aiohttp handler: it runs only on verified deliveries.

    Raises ``TypeError`` when used without parentheses (``@webhook_handler``), and
    ``ConfigurationError`` for a bad setting, both when the module is imported.
    """
    if handler is not None:  # @webhook_handler: the handler arrives where settings belong
        name = getattr(handler, "__name__", type(handler).__name__)
        raise TypeError(
            f"use @hubsig.aiohttp.webhook_handler(secret=...) with parentheses, above {name}"
        )
    receiver = kit.Receiver.of(kit.config_from(config, settings, "hubsig.aiohttp.webhook_handler"))

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            return await _guarded(receiver, request, handler)

        return guarded

    return decorate


async def _guarded(
    receiver: kit.Receiver, request: web.Request, handler: Handler
) -> web.StreamResponse:
    headers = kit.Headers(request.headers.items())
    trace = kit.TraceContext.from_headers(headers)
    answered: list[web.StreamResponse] = []

    async def next_chunk() -> tuple[bytes, bool]:
        try:
            chunk = await request.content.read(READ_SIZE)
        except (ConnectionResetError, ClientPayloadError):
            raise kit.ClientDisconnected from None
        return chunk, not chunk or request.content.at_eof()

    async def read(check: kit.DeliveryCheck) -> bytes:
        return await kit.read_body(check, next_chunk)

    async def handle(delivery: kit.Delivery) -> kit.Outcome:
        request[DELIVERY] = delivery
        # The stream is spent: let request.read()/.json() give the verified bytes.
        request._read_bytes = delivery.fresh_body()  # aiohttp caches the body here
        response = await handler(request)
        response.headers.setdefault(kit.TRACE_HEADER, trace.trace_id)
        answered.append(response)
        return kit.answered(response.status)

    view = kit.RequestView(request.method, request.path, headers)
    try:
        with kit.use_trace(trace):
            flow = kit.deliver(receiver, view, trace, time.monotonic())
            reply = await kit.drive(flow, read, handle, store_blocks=receiver.store_blocks)
    except kit.ClientDisconnected:
        # Nobody is left to answer (read_body said so at INFO); aiohttp needs a response
        # object, and drops it with the closed connection.
        return web.Response(status=400)
    if reply is None:
        return answered[0]
    return _response(reply)


def _guarded_path(guard: kit.PathGuard, request: web.Request) -> bool:
    """Whether a request must be verified (``kit.must_verify``): its path as aiohttp's
    router matches it (``path_safe``, ``%2F`` kept) below the prefix of the sub-application
    whose middleware runs (``add_subapp``), and in full. aiohttp has routed the request
    already, so one that looks exempt passes only if the route it chose is an exempt one
    (its template)."""
    if guard.guards_everything:
        return True
    path = request.rel_url.path_safe
    prefix = _prefix_of_current(request)
    relative = path if not prefix else kit.relative_path(path, prefix)
    return kit.must_verify(guard, relative, path, lambda: _routed_to_exempt(guard, request, prefix))


def _routed_to_exempt(guard: kit.PathGuard, request: web.Request, prefix: str) -> bool:
    """Whether the route aiohttp chose is declared at an exempt entry, or below one."""
    resource = request.match_info.route.resource
    if resource is None:  # no route took it: aiohttp answers 404 or 405 itself
        return True
    template = resource.canonical
    if prefix:
        template = kit.relative_path(template, prefix) or template
    exempt = guard.exempt or ()
    exact = {entry for entry in exempt if entry == "/" or not entry.endswith("/")}
    prefixes = [entry for entry in exempt if entry != "/" and entry.endswith("/")]
    return template in exact or any(template.startswith(p) for p in prefixes)


def _prefix_of_current(request: web.Request) -> str:
    """The full prefix of the sub-application whose middleware runs ("" for the main app);
    aiohttp gives each sub-application's resource its whole prefix, parents included."""
    current = request.match_info.current_app
    for parent, child in itertools.pairwise(request.match_info.apps):
        if child is current:
            for resource in parent.router.resources():
                info = resource.get_info()
                prefix = info.get("prefix")
                if info.get("app") is child and isinstance(prefix, str):
                    return prefix
    return ""


def _response(reply: kit.Reply) -> web.Response:
    sent = {name: value for name, value in reply.headers if name != "content-length"}
    close = sent.pop("connection", None) == "close"
    response = web.Response(body=reply.body, status=reply.status, headers=sent)
    if close:
        response.force_close()  # the rest of a refused body is not worth reading
    return response
