"""One small app per framework, with and without hubsig's middleware, for the routing oracle.

Every app has the same routes: the guarded webhook ``/webhooks/interactions``,
a guarded route with a parameter ``/hooks/{channel}`` (a parameter matches
strings a fixed path does not: ``..``, ``%0a``, ``;x``), and the app's other
route ``/health``. Each handler notes its name in ``Entered`` before doing
anything, so the test sees which route the framework's own router chose.
The FastAPI app puts its routes behind ``APIRouter(prefix="/api")`` and again
in a sub-application mounted at ``/sub``: the prefixes users forget.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hubsig.asgi import ASGIApp, HubSignatureMiddleware
from hubsig.wsgi import HubSignatureMiddleware as WSGIHubSignatureMiddleware
from hubsig.wsgi import WSGIApp

SECRET = "routing-oracle-secret"
GUARDED = "/webhooks/interactions"
CHANNELS = "/hooks/"
OTHER = "/health"
ROUTES = (GUARDED, CHANNELS + "chat", OTHER)
"""A plain spelling of each route, the seeds the generated targets grow from."""

Settings = dict[str, Any]


def exempt_settings(prefixes: tuple[str, ...] = ("",)) -> Settings:
    """The recommended middleware: every request guarded but the app's other route."""
    return {"secret": SECRET, "exempt": [prefix + OTHER for prefix in prefixes]}


def paths_settings(prefixes: tuple[str, ...] = ("",)) -> Settings:
    """The older middleware: the guarded routes listed (``/hooks/`` as a prefix)."""
    guarded = [p + route for p in prefixes for route in (GUARDED, CHANNELS)]
    return {"secret": SECRET, "paths": guarded}


@dataclass
class Entered:
    """The names of the handlers a request entered (``guarded``, ``channel``, ``other``)."""

    names: list[str] = field(default_factory=list)

    def note(self, name: str) -> None:
        self.names.append(name)

    @property
    def guarded(self) -> bool:
        return any(name != "other" for name in self.names)


# --- ASGI ----------------------------------------------------------------------------


def starlette_app(entered: Entered, settings: Settings | None) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def handler(name: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> PlainTextResponse:
            entered.note(name)
            return PlainTextResponse(name)

        return endpoint

    routes = [
        Route(GUARDED, handler("guarded"), methods=["POST"]),
        Route(CHANNELS + "{channel}", handler("channel"), methods=["POST"]),
        Route(OTHER, handler("other"), methods=["GET", "POST"]),
    ]
    middleware = [Middleware(HubSignatureMiddleware, **settings)] if settings else []
    return Starlette(routes=routes, middleware=middleware)


FASTAPI_PREFIXES = ("/api", "/sub")


def fastapi_app(entered: Entered, settings: Settings | None) -> ASGIApp:
    from fastapi import APIRouter, FastAPI

    def router() -> APIRouter:
        routes = APIRouter()

        @routes.post(GUARDED)
        async def guarded() -> str:
            entered.note("guarded")
            return "guarded"

        @routes.post(CHANNELS + "{channel}")
        async def channel(channel: str) -> str:
            entered.note("channel")
            return "channel"

        @routes.api_route(OTHER, methods=["GET", "POST"])
        async def other() -> str:
            entered.note("other")
            return "other"

        return routes

    app = FastAPI()
    app.include_router(router(), prefix="/api")
    sub = FastAPI()
    sub.include_router(router())
    app.mount("/sub", sub)
    if settings:
        app.add_middleware(HubSignatureMiddleware, **settings)
    return app


def litestar_app(entered: Entered, settings: Settings | None) -> ASGIApp:
    from litestar import Litestar, Request, post, route

    @post(GUARDED, name="guarded", status_code=200, sync_to_thread=False)
    def guarded() -> str:
        entered.note("guarded")
        return "guarded"

    @post(CHANNELS + "{channel:str}", name="channel", status_code=200, sync_to_thread=False)
    def channel(request: Request[Any, Any, Any]) -> str:
        entered.note("channel")
        return "channel"

    @route(OTHER, http_method=["GET", "POST"], name="other", status_code=200, sync_to_thread=False)
    def other() -> str:
        entered.note("other")
        return "other"

    app = Litestar(route_handlers=[guarded, channel, other], logging_config=None)
    return HubSignatureMiddleware(app, **settings) if settings else app


def _werkzeug_routes(app: Any, handler: Callable[[str], Callable[..., Any]]) -> None:
    """The three routes, as Flask and Quart (werkzeug rules) declare them."""
    app.add_url_rule(GUARDED, "guarded", handler("guarded"), methods=["POST"])
    app.add_url_rule(CHANNELS + "<channel>", "channel", handler("channel"), methods=["POST"])
    app.add_url_rule(OTHER, "other", handler("other"), methods=["GET", "POST"])


def quart_app(entered: Entered, settings: Settings | None) -> ASGIApp:
    from quart import Quart

    app = Quart("routing_oracle_quart")

    def handler(name: str) -> Callable[..., Any]:
        async def view(**_: Any) -> str:
            entered.note(name)
            return name

        view.__name__ = name
        return view

    _werkzeug_routes(app, handler)
    if settings:
        app.asgi_app = HubSignatureMiddleware(app.asgi_app, **settings)  # type: ignore[method-assign]
    return app


ASGI_APPS: dict[str, tuple[Callable[[Entered, Settings | None], ASGIApp], tuple[str, ...]]] = {
    "starlette": (starlette_app, ("",)),
    "fastapi": (fastapi_app, FASTAPI_PREFIXES),
    "litestar": (litestar_app, ("",)),
    "quart": (quart_app, ("",)),
}
"""Each ASGI framework's builder, and the prefixes its routes stand under."""


# --- WSGI ----------------------------------------------------------------------------


def flask_app(entered: Entered, settings: Settings | None) -> WSGIApp:
    from flask import Flask

    app = Flask("routing_oracle_flask")

    def handler(name: str) -> Callable[..., Any]:
        def view(**_: Any) -> str:
            entered.note(name)
            return name

        view.__name__ = name
        return view

    _werkzeug_routes(app, handler)
    if settings:
        app.wsgi_app = WSGIHubSignatureMiddleware(app.wsgi_app, **settings)  # type: ignore[method-assign]
    return app


urlpatterns: list[Any] = []
"""The Django URLconf of ``django_app`` (this module)."""


def django_app(entered: Entered, settings: Settings | None) -> WSGIApp:
    """Django's WSGI handler; the test configures Django with this module as URLconf."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    def handler(name: str) -> Callable[..., Any]:
        def view(request: Any, **_: Any) -> HttpResponse:
            entered.note(name)
            return HttpResponse(name)

        exempt: Callable[..., Any] = csrf_exempt(view)
        return exempt

    urlpatterns[:] = [
        path(GUARDED.lstrip("/"), handler("guarded")),
        path(CHANNELS.lstrip("/") + "<str:channel>", handler("channel")),
        path(OTHER.lstrip("/"), handler("other")),
    ]
    application: WSGIApp = WSGIHandler()
    return WSGIHubSignatureMiddleware(application, **settings) if settings else application


WSGI_APPS: dict[str, Callable[[Entered, Settings | None], WSGIApp]] = {
    "flask": flask_app,
    "django": django_app,
}


# --- aiohttp (a real server on loopback: its router needs aiohttp's own request) -------


def aiohttp_app(entered: Entered, settings: Settings | None) -> Any:
    from aiohttp import web

    from hubsig.aiohttp import hubsig_middleware

    def handler(name: str) -> Callable[[web.Request], Any]:
        async def view(request: web.Request) -> web.Response:
            entered.note(name)
            return web.Response(text=name)

        return view

    middlewares = [hubsig_middleware(**settings)] if settings else []
    app = web.Application(middlewares=middlewares)
    app.router.add_post(GUARDED, handler("guarded"))
    app.router.add_post(CHANNELS + "{channel}", handler("channel"))
    app.router.add_route("*", OTHER, handler("other"))
    return app


@contextmanager
def aiohttp_server(app: Any) -> Iterator[int]:
    """Serve ``app`` on a loopback port from a thread of its own; yields the port."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port: int = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# --- served by real servers: every app behind one dispatcher, recording to a file --------

APP_HEADER = "x-oracle-app"
LOG_ENV = "HUBSIG_ORACLE_LOG"


class FileEntered(Entered):
    """``Entered`` that appends ``<trace id> <handler>`` to a file, read by the test."""

    def __init__(self, log: str, trace: Callable[[], str]) -> None:
        super().__init__()
        self._log, self._trace = log, trace

    def note(self, name: str) -> None:
        with open(self._log, "a", encoding="ascii") as log:
            log.write(f"{self._trace()} {name}\n")


def served_apps() -> ASGIApp:
    """The ASGI factory uvicorn and granian serve: Starlette and FastAPI, bare and behind
    hubsig (``exempt=`` and ``paths=``), chosen by the ``X-Oracle-App`` header."""
    import contextvars
    import os

    trace: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="")
    entered = FileEntered(os.environ[LOG_ENV], trace.get)
    apps: dict[str, ASGIApp] = {}
    for framework in ("starlette", "fastapi"):
        build, prefixes = ASGI_APPS[framework]
        apps[f"{framework}/bare"] = build(entered, None)
        apps[f"{framework}/exempt"] = build(entered, exempt_settings(prefixes))
        apps[f"{framework}/paths"] = build(entered, paths_settings(prefixes))

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = dict(scope["headers"])
        trace.set(headers.get(b"x-b3-traceid", b"").decode("latin-1"))
        app = apps.get(headers.get(APP_HEADER.encode(), b"").decode("latin-1"))
        if app is None:
            await send({"type": "http.response.start", "status": 421, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return dispatch
