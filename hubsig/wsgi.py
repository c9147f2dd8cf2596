"""WSGI middleware: verify every request (but ``exempt=`` routes) before the app sees it.

Trusts ``CONTENT_LENGTH`` only as an upper bound it checks against the
limit; reads ``wsgi.input`` in pieces up to that length (or to its end when
the server marks the input terminated, as for chunked requests), hashing as
it goes. After the signature matched, the app gets a fresh ``wsgi.input``
with the same bytes, and ``hubsig.delivery_of(request)`` the verified
``Delivery`` (it is at ``environ["hubsig.delivery"]``).
"""

from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from hubsig.errors import ConfigurationError
from hubsig.kit import (
    ENVIRON_KEY,
    Delivery,
    ExemptRoutes,
    Outcome,
    Receiver,
    TraceContext,
    WebhookConfig,
    WebhookSettings,
    check_routes,
    config_from,
    failure,
    find_router,
    handler_failed,
    logger,
    succeeded,
)
from hubsig.kit.wsgi import (
    StartResponse,
    TracedStart,
    WSGIApp,
    WSGIEnvironment,
    guarded,
    refuse_async_store,
    send_reply,
    serve,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ENVIRON_KEY",
    "HubSignatureMiddleware",
    "StartResponse",
    "WSGIApp",
    "WSGIEnvironment",
]

ADAPTER = "hubsig.wsgi.HubSignatureMiddleware"


class HubSignatureMiddleware:
    """Refuses unsigned or badly signed deliveries to the app; passes what is exempt.

    Takes ``config=WebhookConfig(...)`` or its settings as keywords. Every
    request is guarded but those ``exempt=`` (or plainly not ``paths=``)
    lets through, its path read as werkzeug and Django read it (UTF-8). At
    the first request the app's router, where hubsig recognises it (Flask,
    Django), must match every exact ``exempt``/``paths`` entry; if not, the
    error is logged and every request refused with 500. An async
    secret resolver is run to completion on a private event loop; an asyncio
    store is refused. With ``store=``, a delivery whose events were all
    processed is acknowledged without reaching the app, and the claims are
    completed when the app answers a 2xx. If the app raises on a verified
    delivery, the sender gets the 500 ``EventsResponse``.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        config: WebhookConfig | None = None,
        **settings: Unpack[WebhookSettings],
    ) -> None:
        self.app = app
        self.config = config_from(config, settings, ADAPTER)
        self._receiver = Receiver.of(self.config)
        refuse_async_store(self._receiver, ADAPTER)
        self._routes_checked = self.config.guard.guards_everything
        self._broken: ConfigurationError | None = None
        self._exempt: ExemptRoutes | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self._routes_checked:
            self._check_routes()
        if self._broken is not None:
            logger.error("refusing a request: hubsig is misconfigured: %s", self._broken)
            return send_reply(start_response, failure(TraceContext.from_headers(())))
        if not guarded(self.config.guard, environ, self._exempt):
            return self.app(environ, start_response)
        return serve(
            self._receiver,
            environ,
            start_response,
            lambda delivery, traced: self._run_app(environ, traced, delivery),
        )

    def _check_routes(self) -> None:
        """Once, at the first request (WSGI has no start-up event): every exact path setting
        names a route of the app's router (Flask's, Django's URL conf)."""
        router = find_router(self.app)
        try:
            check_routes(self.config.guard, router, ADAPTER)
            self._exempt = ExemptRoutes(self.config.guard, router)
        except ConfigurationError as error:
            logger.error("hubsig cannot start: %s", error)
            self._broken = error
        self._routes_checked = True

    def _run_app(
        self, environ: WSGIEnvironment, start: TracedStart, delivery: Delivery
    ) -> tuple[Outcome, Iterable[bytes]]:
        """The app, on the verified delivery; a 200 status line is success."""
        environ[ENVIRON_KEY] = delivery
        fresh = delivery.fresh_body()  # only the events to process now (see Delivery)
        environ["wsgi.input"] = io.BytesIO(fresh)
        environ["CONTENT_LENGTH"] = str(len(fresh))
        try:
            body = self.app(environ, start)
            if not start.status:
                # A generator app starts its response when first iterated: do that
                # now, so the status is known before the claims are settled.
                body = _started(body)
        except Exception:
            logger.exception("the app failed on a delivery trace_id=%s", delivery.trace.trace_id)
            handler_failed(sys.exc_info()[1] or RuntimeError())
            return Outcome(False), send_reply(start, failure(delivery.trace), sys.exc_info())
        code = start.status[:3]
        status = int(code) if code.isdigit() else None
        return Outcome(status is not None and succeeded(status), status=status), body


def _started(body: Iterable[bytes]) -> Iterable[bytes]:
    iterator = iter(body)
    first = next(iterator, None)
    rest = itertools.chain([] if first is None else [first], iterator)
    close = getattr(body, "close", None)
    return _Closing(rest, close) if close is not None else rest


class _Closing:
    """An iterable that keeps the app's ``close`` (PEP 3333: the server must call it)."""

    def __init__(self, chunks: Iterable[bytes], close: Callable[[], object]) -> None:
        self._chunks = chunks
        self.close = close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)
