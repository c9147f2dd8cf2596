"""The deployments the fail-closed suite attacks: every adapter in every framework and mount.

Each builder takes a ``Recorder`` and returns an app whose guarded handler
records every request it is entered with (by ``X-B3-TraceId``) before doing
anything, and records it again only once ``hubsig.delivery_of`` (or the
adapter itself) handed it a verified delivery. The test process builds the
apps in memory; the real servers (uvicorn, hypercorn, gunicorn) build them
with ``asgi_server_app`` / ``wsgi_server_app``, record to the file named by
``HUBSIG_FAIL_CLOSED_LOG``, and pick a deployment by the ``X-Deployment``
header, so the app sees each request exactly as the server made it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from flask import Flask
from flask import request as flask_request
from litestar import Litestar
from litestar import Request as LitestarRequest
from litestar import post as litestar_post
from litestar.middleware import DefineMiddleware
from quart import Quart
from quart import request as quart_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import hubsig
from hubsig import Delivery, EventsPayload, WebhookEndpoint
from hubsig.asgi import ASGIApp, HubSignatureMiddleware, Receive, Scope, Send
from hubsig.fastapi import (
    DeliveryRejected,
    Verified,
    VerifiedDelivery,
    rejected_response,
    verified_router,
)
from hubsig.wsgi import HubSignatureMiddleware as WSGIHubSignatureMiddleware
from hubsig.wsgi import StartResponse, WSGIApp, WSGIEnvironment

SECRET = "fail-closed-secret"
PATH = "/webhooks/interactions"
"""The guarded route, relative to where its app is mounted."""
UNGUARDED = "/webhooks/unguarded"
"""A route the middleware does not guard, whose handler reads ``delivery_of``: the safety net."""
MOUNT = "/v1"
"""Where the mounted deployments put their sub-application (the server's root path is ``/api``)."""
LOG_ENV = "HUBSIG_FAIL_CLOSED_LOG"
DEPLOYMENT_HEADER = "x-deployment"
TRACE_HEADER = "x-b3-traceid"


class Recorder:
    """Which requests (by trace id) entered a guarded handler, and which were verified there.

    With ``log`` it appends to that file (a server process) or reads what
    was appended (the test process); without, it keeps the ids in memory.
    """

    def __init__(self, log: Path | None = None) -> None:
        self._log = log
        self._offset = 0
        self._lock = threading.Lock()
        self._entered: set[str] = set()
        self._verified: set[str] = set()

    def entered(self, trace_id: str) -> None:
        self._add("entered", trace_id)

    def verified(self, trace_id: str) -> None:
        self._add("verified", trace_id)

    def has_entered(self, trace_id: str) -> bool:
        self._read()
        return trace_id in self._entered

    def has_verified(self, trace_id: str) -> bool:
        self._read()
        return trace_id in self._verified

    def _add(self, kind: str, trace_id: str) -> None:
        if self._log is None:
            with self._lock:
                (self._entered if kind == "entered" else self._verified).add(trace_id)
            return
        with self._log.open("a", encoding="ascii") as log:
            log.write(f"{kind} {trace_id}\n")

    def _read(self) -> None:
        if self._log is None or not self._log.exists():
            return
        with self._log.open("rb") as log:
            log.seek(self._offset)
            new = log.read()
        complete = new[: new.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode("ascii").splitlines():
            kind, _, trace_id = line.partition(" ")
            (self._entered if kind == "entered" else self._verified).add(trace_id)


def _answer(delivery: Delivery) -> dict[str, Any]:
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()


def _guarded_call(recorder: Recorder, trace_id: str, request: object) -> dict[str, Any]:
    """What every guarded handler does: record, read its delivery, record that it got one."""
    recorder.entered(trace_id)
    delivery = hubsig.delivery_of(request)
    recorder.verified(trace_id)
    return _answer(delivery)


# --- ASGI ----------------------------------------------------------------------------


def _starlette_routes(recorder: Recorder) -> list[Route]:
    async def handler(request: Request) -> JSONResponse:
        return JSONResponse(_guarded_call(recorder, request.headers.get(TRACE_HEADER, ""), request))

    return [Route(PATH, handler, methods=["POST"]), Route(UNGUARDED, handler, methods=["POST"])]


def starlette(recorder: Recorder) -> ASGIApp:
    """The Starlette recipe: the middleware on the app, ``exempt=`` its other route."""
    middleware = [Middleware(HubSignatureMiddleware, secret=SECRET, exempt=[UNGUARDED])]
    return Starlette(routes=_starlette_routes(recorder), middleware=middleware)


def starlette_mount(recorder: Recorder) -> ASGIApp:
    """That app under ``Mount("/api", ...)``: the sub-app sees ``root_path`` ``/api``."""
    return Starlette(routes=[Mount(MOUNT, app=starlette(recorder))])


def starlette_outer(recorder: Recorder) -> ASGIApp:
    """The middleware on the outer app, guarding the mounted route by its full path."""
    inner = Starlette(routes=_starlette_routes(recorder))
    middleware = [Middleware(HubSignatureMiddleware, secret=SECRET, paths=[MOUNT + PATH])]
    return Starlette(routes=[Mount(MOUNT, app=inner)], middleware=middleware)


def fastapi(recorder: Recorder) -> ASGIApp:
    """The FastAPI recipe: ``add_middleware`` with ``exempt=`` its other route."""
    app = FastAPI()
    app.add_middleware(HubSignatureMiddleware, secret=SECRET, exempt=[UNGUARDED])

    async def handler(request: Request) -> dict[str, Any]:
        return _guarded_call(recorder, request.headers.get(TRACE_HEADER, ""), request)

    app.add_api_route(PATH, handler, methods=["POST"])
    app.add_api_route(UNGUARDED, handler, methods=["POST"])
    return app


def fastapi_mount(recorder: Recorder) -> ASGIApp:
    """That app as a FastAPI sub-application: ``app.mount("/api", sub)``."""
    app = FastAPI()
    app.mount(MOUNT, fastapi(recorder))
    return app


def _endpoint(recorder: Recorder) -> WebhookEndpoint:
    @hubsig.webhook(secret=SECRET)
    def endpoint(payload: EventsPayload, delivery: Delivery) -> None:
        recorder.entered(delivery.trace.trace_id)
        recorder.verified(delivery.trace.trace_id)

    return endpoint


def webhook_route(recorder: Recorder) -> ASGIApp:
    """``@webhook`` as a Starlette route (the README's ``Route(path, endpoint)``)."""
    return Starlette(routes=[Route(PATH, _endpoint(recorder), methods=["POST"])])


def webhook_mount(recorder: Recorder) -> ASGIApp:
    """That route in a FastAPI sub-application under ``/api``."""
    app = FastAPI()
    app.mount(MOUNT, webhook_route(recorder))
    return app


def webhook_alone(recorder: Recorder) -> ASGIApp:
    """``@webhook`` served on its own (``uvicorn module:endpoint``): every path is guarded."""
    return _endpoint(recorder)


def dependency(recorder: Recorder) -> ASGIApp:
    """The FastAPI dependency on one route, refusals answered by ``rejected_response``."""
    app = FastAPI()
    app.add_exception_handler(DeliveryRejected, rejected_response)
    verified = VerifiedDelivery(secret=SECRET)

    @app.post(PATH)
    async def hook(request: Request, delivery: Delivery = Depends(verified)) -> dict[str, Any]:  # noqa: B008
        trace_id = request.headers.get(TRACE_HEADER, "")
        recorder.entered(trace_id)
        if isinstance(delivery, Delivery):
            recorder.verified(trace_id)
        return _answer(delivery)

    return app


def dependency_mount(recorder: Recorder) -> ASGIApp:
    """The dependency's app as a FastAPI sub-application under ``/api``."""
    app = FastAPI()
    app.mount(MOUNT, dependency(recorder))
    return app


def route(recorder: Recorder) -> ASGIApp:
    """``verified_router``, included by the app under a prefix (the recipe)."""
    app = FastAPI()
    webhooks = verified_router(secret=SECRET)

    @webhooks.post(PATH.removeprefix("/webhooks"))
    async def hook(request: Request, delivery: Verified) -> dict[str, Any]:
        return _guarded_call(recorder, request.headers.get(TRACE_HEADER, ""), request)

    app.include_router(webhooks, prefix="/webhooks")
    return app


def route_mount(recorder: Recorder) -> ASGIApp:
    """That app as a FastAPI sub-application under ``/api``."""
    app = FastAPI()
    app.mount(MOUNT, route(recorder))
    return app


def _litestar_handlers(recorder: Recorder) -> list[Any]:
    async def handler(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return _guarded_call(recorder, request.headers.get(TRACE_HEADER, ""), request)

    return [
        litestar_post(PATH, name="guarded")(handler),
        litestar_post(UNGUARDED, name="unguarded")(handler),
    ]


def litestar(recorder: Recorder) -> ASGIApp:
    """Litestar's own registration, ``DefineMiddleware`` (it passes ``app=`` by keyword);
    Litestar runs it after its router, on the path it matched."""
    middleware = DefineMiddleware(HubSignatureMiddleware, secret=SECRET, paths=[PATH])
    return Litestar(
        route_handlers=_litestar_handlers(recorder), middleware=[middleware], logging_config=None
    )


def litestar_wrapped(recorder: Recorder) -> ASGIApp:
    """The middleware around the whole Litestar app, as around any ASGI app."""
    app = Litestar(route_handlers=_litestar_handlers(recorder), logging_config=None)
    return HubSignatureMiddleware(app, secret=SECRET, exempt=[UNGUARDED])


def quart(recorder: Recorder) -> ASGIApp:
    """Quart: ``app.asgi_app = HubSignatureMiddleware(app.asgi_app, ...)``."""
    app = Quart("fail_closed_quart")

    async def handler() -> dict[str, Any]:
        trace_id = quart_request.headers.get(TRACE_HEADER, "")
        return _guarded_call(recorder, trace_id, quart_request)

    app.add_url_rule(PATH, "guarded", handler, methods=["POST"])
    app.add_url_rule(UNGUARDED, "unguarded", handler, methods=["POST"])
    app.asgi_app = HubSignatureMiddleware(app.asgi_app, secret=SECRET, paths=[PATH])  # type: ignore[method-assign]
    return app


ASGI_BUILDERS: dict[str, Callable[[Recorder], ASGIApp]] = {
    "starlette": starlette,
    "starlette-mount": starlette_mount,
    "starlette-outer": starlette_outer,
    "fastapi": fastapi,
    "fastapi-mount": fastapi_mount,
    "webhook-route": webhook_route,
    "webhook-mount": webhook_mount,
    "webhook-alone": webhook_alone,
    "dependency": dependency,
    "dependency-mount": dependency_mount,
    "route": route,
    "route-mount": route_mount,
    "litestar": litestar,
    "litestar-wrapped": litestar_wrapped,
    "quart": quart,
}


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode("latin-1")
    for key, value in scope["headers"]:
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return ""


def asgi_dispatcher(apps: dict[str, ASGIApp]) -> ASGIApp:
    """One ASGI app serving every deployment, chosen by ``X-Deployment``; scopes unchanged."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        app = apps.get(_header(scope, DEPLOYMENT_HEADER))
        if app is None:
            await send({"type": "http.response.start", "status": 421, "headers": []})
            await send({"type": "http.response.body", "body": b"no such deployment"})
            return
        await app(scope, receive, send)

    return dispatch


def asgi_server_app() -> ASGIApp:
    """The factory uvicorn and hypercorn serve: every ASGI deployment, recording to a file."""
    recorder = Recorder(Path(os.environ[LOG_ENV]))
    return asgi_dispatcher({name: build(recorder) for name, build in ASGI_BUILDERS.items()})


# --- WSGI ----------------------------------------------------------------------------


def _flask_app(recorder: Recorder, guarded: bool) -> Flask:
    app = Flask("fail_closed_flask")

    def handler() -> dict[str, Any]:
        trace_id = flask_request.headers.get(TRACE_HEADER, "")
        return _guarded_call(recorder, trace_id, flask_request)

    app.add_url_rule(PATH, "guarded", handler, methods=["POST"])
    app.add_url_rule(UNGUARDED, "unguarded", handler, methods=["POST"])
    if guarded:
        app.wsgi_app = WSGIHubSignatureMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, secret=SECRET, exempt=[UNGUARDED]
        )
    return app


def flask(recorder: Recorder) -> WSGIApp:
    """The Flask recipe: ``app.wsgi_app`` wrapped, ``exempt=`` its other route."""
    return _flask_app(recorder, guarded=True)


def flask_dispatcher(recorder: Recorder) -> WSGIApp:
    """That app mounted by werkzeug's ``DispatcherMiddleware`` under ``/api`` (SCRIPT_NAME)."""
    return DispatcherMiddleware(NotFound(), {MOUNT: _flask_app(recorder, guarded=True)})


def flask_outer(recorder: Recorder) -> WSGIApp:
    """The middleware around the dispatcher, guarding the mounted route by its full path."""
    mounted = DispatcherMiddleware(NotFound(), {MOUNT: _flask_app(recorder, guarded=False)})
    return WSGIHubSignatureMiddleware(mounted, secret=SECRET, paths=[MOUNT + PATH])


def _django_view(recorder: Recorder) -> Callable[[Any], Any]:
    from django.http import JsonResponse

    def view(request: Any) -> Any:
        trace_id = request.headers.get(TRACE_HEADER, "")
        return JsonResponse(_guarded_call(recorder, trace_id, request))

    return view


urlpatterns: list[Any] = []
"""The Django URLconf of these deployments (this module), filled by ``django_application``."""


def django_application(recorder: Recorder) -> WSGIApp:
    """Django's WSGI application behind the middleware (the README's ``wsgi.py``).

    Django must be configured with this module as ``ROOT_URLCONF``.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    view = csrf_exempt(_django_view(recorder))
    urlpatterns[:] = [
        path(PATH.lstrip("/"), view, name="guarded"),
        path(UNGUARDED.lstrip("/"), view, name="unguarded"),
    ]
    application: WSGIApp = WSGIHandler()
    return WSGIHubSignatureMiddleware(application, secret=SECRET, paths=[PATH])


def django_dispatcher(recorder: Recorder) -> WSGIApp:
    """That application under ``/api`` by ``DispatcherMiddleware`` (SCRIPT_NAME ``/api``)."""
    return DispatcherMiddleware(NotFound(), {MOUNT: django_application(recorder)})


def webhook_wsgi(recorder: Recorder) -> WSGIApp:
    """``@webhook``'s ``.wsgi`` mounted at the guarded path by ``DispatcherMiddleware``."""
    return DispatcherMiddleware(NotFound(), {PATH: _endpoint(recorder).wsgi})


WSGI_BUILDERS: dict[str, Callable[[Recorder], WSGIApp]] = {
    "flask": flask,
    "flask-dispatcher": flask_dispatcher,
    "flask-outer": flask_outer,
    "django": django_application,
    "django-dispatcher": django_dispatcher,
    "webhook-wsgi": webhook_wsgi,
}

DJANGO_SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "tests-only-fail-closed-key",
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": __name__,
    "FORCE_SCRIPT_NAME": MOUNT,
    "MIDDLEWARE": [],
    "INSTALLED_APPS": [],
    "DATABASES": {},
    "USE_TZ": True,
}
"""Django behind a proxy that strips ``/api``: ``FORCE_SCRIPT_NAME`` says where it lives."""


def wsgi_dispatcher(apps: dict[str, WSGIApp]) -> WSGIApp:
    """One WSGI app serving every deployment, chosen by ``X-Deployment``; environ unchanged."""

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = apps.get(environ.get("HTTP_X_DEPLOYMENT", ""))
        if app is None:
            start_response("421 Misdirected Request", [("Content-Type", "text/plain")])
            return [b"no such deployment"]
        return app(environ, start_response)

    return dispatch


def wsgi_server_app() -> WSGIApp:
    """The factory gunicorn serves: every WSGI deployment, recording to a file."""
    import django
    from django.conf import settings

    settings.configure(**DJANGO_SETTINGS)
    django.setup(set_prefix=False)
    recorder = Recorder(Path(os.environ[LOG_ENV]))
    return wsgi_dispatcher({name: build(recorder) for name, build in WSGI_BUILDERS.items()})


@dataclass(frozen=True)
class Shape:
    """How a deployment puts hubsig relative to its router, which decides what may answer.

    ``prefix`` is where its guarded route is, below the server's root;
    ``guard_first`` is true when hubsig sees the request before any router
    could answer it, so a spelling of the guarded path must get hubsig's own
    refusal; ``outside_mount`` when that includes the mount prefix's own
    spellings; ``every_path`` when hubsig guards every path it is given;
    ``unguarded`` whether it has the ``delivery_of`` safety-net route.
    """

    prefix: str
    guard_first: bool
    unguarded: bool
    outside_mount: bool = False
    every_path: bool = False


SHAPES: dict[str, Shape] = {
    "starlette": Shape("", guard_first=True, unguarded=True),
    "starlette-mount": Shape(MOUNT, guard_first=True, unguarded=True),
    "starlette-outer": Shape(MOUNT, guard_first=True, unguarded=True, outside_mount=True),
    "fastapi": Shape("", guard_first=True, unguarded=True),
    "fastapi-mount": Shape(MOUNT, guard_first=True, unguarded=True),
    "webhook-route": Shape("", guard_first=False, unguarded=False),
    "webhook-mount": Shape(MOUNT, guard_first=False, unguarded=False),
    "webhook-alone": Shape("", guard_first=True, unguarded=False, every_path=True),
    "dependency": Shape("", guard_first=False, unguarded=False),
    "dependency-mount": Shape(MOUNT, guard_first=False, unguarded=False),
    "route": Shape("", guard_first=False, unguarded=False),
    "route-mount": Shape(MOUNT, guard_first=False, unguarded=False),
    "litestar": Shape("", guard_first=False, unguarded=True),
    "litestar-wrapped": Shape("", guard_first=True, unguarded=True),
    "quart": Shape("", guard_first=True, unguarded=True),
    "flask": Shape("", guard_first=True, unguarded=True),
    "flask-dispatcher": Shape(MOUNT, guard_first=True, unguarded=True),
    "flask-outer": Shape(MOUNT, guard_first=True, unguarded=True, outside_mount=True),
    "django": Shape("", guard_first=True, unguarded=True),
    "django-dispatcher": Shape(MOUNT, guard_first=True, unguarded=True),
    "webhook-wsgi": Shape("", guard_first=False, unguarded=False),
}
