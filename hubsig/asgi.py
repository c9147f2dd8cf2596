"""Pure ASGI middleware: verify every request (but ``exempt=`` routes) before the app sees it.

Works around any ASGI app (Starlette, FastAPI, Litestar, Quart, Falcon, a
bare callable) and needs no framework itself. The body is hashed as it is
received, refused as soon as it passes the limit, and replayed to the app
unchanged after the signature matched, so the app reads it as if nothing
stood in between. ``hubsig.delivery_of(request)`` gives the app the
verified ``Delivery`` (it is at ``scope["state"]["hubsig"]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubsig.errors import ConfigurationError
from hubsig.kit import (
    Delivery,
    ExemptRoutes,
    Outcome,
    Receiver,
    WebhookConfig,
    WebhookSettings,
    check_routes,
    config_from,
    find_router,
    logger,
)
from hubsig.kit.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    TracedSend,
    built_by_a_running_server,
    checking_store_at_startup,
    guarded,
    refuse_to_serve,
    run_app,
    serve,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ASGIApp", "HubSignatureMiddleware", "Message", "Receive", "Scope", "Send"]

ADAPTER = "hubsig.asgi.HubSignatureMiddleware"


class HubSignatureMiddleware:
    """Refuses unsigned or badly signed deliveries to the app; passes what is exempt.

    Takes a ready ``config=WebhookConfig(...)`` or its settings as keywords
    (``secret=``, ``exempt=``, ``max_body_size=``, ...). Every HTTP request
    is guarded but those ``exempt=`` (or plainly not ``paths=``) lets
    through; websocket and lifespan messages go straight to the app. At
    start-up (lifespan, or the first request) the app's router, where hubsig
    recognises it, must match every exact ``exempt``/``paths`` entry, or the
    start-up fails naming the entry. With
    ``store=``, a delivery whose events were all processed is acknowledged
    without reaching the app, and the claims are completed when the app
    answers a 2xx. If the app raises before it started its response, the
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
        self._routes_checked = False
        self._exempt: ExemptRoutes | None = None
        try:
            self.config = config_from(config, settings, ADAPTER)
            self._receiver = Receiver.of(self.config)  # checks a blocking store and sink
        except ConfigurationError as error:
            if not built_by_a_running_server():
                raise
            # Built lazily inside a running server (Starlette's add_middleware builds
            # on the lifespan start-up), where uvicorn would swallow the exception and
            # serve anyway: fail the start-up instead, and refuse every request.
            logger.error("hubsig cannot start: %s", error)
            self._broken = error

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The ASGI interface (typed loosely, so every framework's ASGI types fit)."""
        if not self._routes_checked and self._broken is None and scope["type"] != "websocket":
            self._check_routes(scope)
        if self._broken is not None:
            await refuse_to_serve(self._broken, scope, receive, send)
        elif scope["type"] == "lifespan" and not self._receiver.checked.done:
            await self.app(scope, checking_store_at_startup(self._receiver, receive, send), send)
        elif scope["type"] != "http" or not guarded(self.config.guard, scope, self._exempt):
            await self.app(scope, receive, send)
        else:

            async def handle(delivery: Delivery, traced: TracedSend) -> Outcome:
                return await run_app(self.app, scope, receive, traced, delivery)

            await serve(self._receiver, scope, receive, send, handle)

    def _check_routes(self, scope: Scope) -> None:
        """Once, at lifespan start-up or the first request: every exact path setting names a
        route of the app's router; if not, the start-up fails and every request is refused."""
        self._routes_checked = True
        router = find_router(self.app, scope.get("app"))
        try:
            check_routes(self.config.guard, router, ADAPTER)
            self._exempt = ExemptRoutes(self.config.guard, router)
        except ConfigurationError as error:
            logger.error("hubsig cannot start: %s", error)
            self._broken = error
