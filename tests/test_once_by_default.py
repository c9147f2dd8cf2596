"""The same promise through every door: each event once, with default settings.

Every adapter is built with its secret alone, the way a framework page shows
it, and sent the same signed body twice: the handler runs once, and the
repeat is acknowledged 200 with the delivery's ids. ``store=None`` is the
documented way out, and then the handler runs each time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hubsig
from hubsig.fastapi import Verified
from hubsig.testing import make_events, signed_request
from tests import django_site
from tests.fail_closed_wire import raw_request
from tests.harness import Reply, call_wsgi, run_asgi
from tests.harness import request as http_request
from tests.oracle_apps import aiohttp_server

SECRET = "once-by-default"
PATH = "/webhooks/interactions"

Send = Callable[[str, dict[str, str], bytes], Reply]
Door = Callable[[list[str], dict[str, Any]], Iterator[Send]]


def _answer() -> dict[str, Any]:
    return {"status": {"code": 0, "message": "OK"}}


def _loop_send(app: Any) -> Iterator[Send]:
    loop = asyncio.new_event_loop()
    try:
        yield lambda target, headers, body: run_asgi(
            app, http_request("POST", target, headers, body), loop, answer_errors=True
        )
    finally:
        loop.close()


def asgi_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from hubsig.asgi import HubSignatureMiddleware

    async def handler(request: Request) -> JSONResponse:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return JSONResponse(_answer())

    middleware = [Middleware(HubSignatureMiddleware, secret=SECRET, **settings)]
    yield from _loop_send(
        Starlette(routes=[Route(PATH, handler, methods=["POST"])], middleware=middleware)
    )


def fastapi_dependency(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from fastapi import Depends, FastAPI

    from hubsig.fastapi import DeliveryRejected, VerifiedDelivery, rejected_response

    app = FastAPI()
    app.add_exception_handler(DeliveryRejected, rejected_response)
    verified = Depends(VerifiedDelivery(secret=SECRET, **settings))

    @app.post(PATH)
    async def hook(delivery: hubsig.Delivery = verified) -> dict[str, Any]:
        runs.append(delivery.trace.trace_id)
        return _answer()

    yield from _loop_send(app)


def fastapi_route(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from fastapi import FastAPI

    from hubsig.fastapi import verified_router

    app = FastAPI()
    webhooks = verified_router(secret=SECRET, **settings)

    @webhooks.post(PATH)
    async def hook(delivery: Verified) -> dict[str, Any]:
        runs.append(delivery.trace.trace_id)
        return _answer()

    app.include_router(webhooks)
    yield from _loop_send(app)


def webhook_asgi(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    @hubsig.webhook(secret=SECRET, **settings)
    def endpoint(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
        runs.append(delivery.trace.trace_id)

    yield from _loop_send(endpoint)


def webhook_wsgi(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    @hubsig.webhook(secret=SECRET, **settings)
    def endpoint(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
        runs.append(delivery.trace.trace_id)

    yield lambda target, headers, body: call_wsgi(
        endpoint.wsgi, http_request("POST", target, headers, body)
    )


def wsgi_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from flask import Flask, request

    from hubsig.wsgi import HubSignatureMiddleware

    app = Flask("once_wsgi")

    @app.post(PATH)
    def hook() -> dict[str, Any]:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return _answer()

    app.wsgi_app = HubSignatureMiddleware(app.wsgi_app, secret=SECRET, **settings)  # type: ignore[method-assign]
    yield lambda target, headers, body: call_wsgi(app, http_request("POST", target, headers, body))


def flask_native(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from flask import Flask, request

    from hubsig.flask import HubSig

    app = Flask("once_flask")
    webhooks = HubSig(app, secret=SECRET, **settings)

    @app.post(PATH)
    @webhooks.webhook_view()
    def hook() -> dict[str, Any]:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return _answer()

    yield lambda target, headers, body: call_wsgi(app, http_request("POST", target, headers, body))


def django_native(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    django_site.configure()
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpRequest, JsonResponse
    from django.test.utils import override_settings
    from django.urls import path

    from hubsig.django import webhook_view

    @webhook_view(secret=SECRET, **settings)
    def hook(request: HttpRequest) -> JsonResponse:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return JsonResponse(_answer())

    django_site.urlpatterns[:] = [path(PATH.lstrip("/"), hook)]
    with override_settings(ROOT_URLCONF="tests.django_site"):
        app = WSGIHandler()
        yield lambda target, headers, body: call_wsgi(
            app, http_request("POST", target, headers, body)
        )


def _aiohttp(runs: list[str], settings: dict[str, Any], middleware: bool) -> Iterator[Send]:
    from aiohttp import web

    from hubsig.aiohttp import hubsig_middleware, webhook_handler

    async def hook(request: web.Request) -> web.Response:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return web.json_response(_answer())

    if middleware:
        app = web.Application(middlewares=[hubsig_middleware(secret=SECRET, **settings)])
        app.router.add_post(PATH, hook)
    else:
        app = web.Application()
        app.router.add_post(PATH, webhook_handler(secret=SECRET, **settings)(hook))
    with aiohttp_server(app) as port:
        yield lambda target, headers, body: raw_request(port, "POST", target, headers, body)


def aiohttp_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    yield from _aiohttp(runs, settings, middleware=True)


def aiohttp_handler(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    yield from _aiohttp(runs, settings, middleware=False)


def litestar_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from litestar import Litestar, Request, post

    from hubsig.asgi import HubSignatureMiddleware

    @post(PATH, status_code=200)
    async def hook(request: Request[Any, Any, Any]) -> dict[str, Any]:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return _answer()

    app = Litestar(route_handlers=[hook], logging_config=None)
    yield from _loop_send(HubSignatureMiddleware(app, secret=SECRET, **settings))


def quart_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    from quart import Quart, request

    from hubsig.asgi import HubSignatureMiddleware

    app = Quart("once_quart")

    @app.post(PATH)
    async def hook() -> dict[str, Any]:
        runs.append(hubsig.delivery_of(request).trace.trace_id)
        return _answer()

    app.asgi_app = HubSignatureMiddleware(app.asgi_app, secret=SECRET, **settings)  # type: ignore[method-assign]
    yield from _loop_send(app)


def falcon_middleware(runs: list[str], settings: dict[str, Any]) -> Iterator[Send]:
    import falcon

    from hubsig.wsgi import HubSignatureMiddleware

    class Hook:
        def on_post(self, request: falcon.Request, response: falcon.Response) -> None:
            runs.append(hubsig.delivery_of(request).trace.trace_id)
            response.media = _answer()

    app = falcon.App()
    app.add_route(PATH, Hook())
    wrapped = HubSignatureMiddleware(app, secret=SECRET, **settings)
    yield lambda target, headers, body: call_wsgi(
        wrapped, http_request("POST", target, headers, body)
    )


DOORS: dict[str, Door] = {
    "asgi-middleware": asgi_middleware,
    "wsgi-middleware": wsgi_middleware,
    "fastapi-dependency": fastapi_dependency,
    "fastapi-route": fastapi_route,
    "webhook-asgi": webhook_asgi,
    "webhook-wsgi": webhook_wsgi,
    "flask-native": flask_native,
    "django-native": django_native,
    "aiohttp-middleware": aiohttp_middleware,
    "aiohttp-handler": aiohttp_handler,
    "litestar": litestar_middleware,
    "quart": quart_middleware,
    "falcon": falcon_middleware,
}


def _send_twice(
    door: Door, settings: dict[str, Any]
) -> tuple[list[str], list[Reply], tuple[str, ...]]:
    events = make_events(2)
    request = signed_request(events, SECRET)
    runs: list[str] = []
    replies = []
    for send in door(runs, settings):
        for _ in range(2):
            replies.append(send(PATH, dict(request.headers), request.body))
    return runs, replies, events.entity_ids


@pytest.mark.parametrize("door", DOORS)
def test_the_same_body_twice_runs_the_handler_once(door: str) -> None:
    runs, replies, ids = _send_twice(DOORS[door], {})
    assert len(runs) == 1, f"the handler ran {len(runs)} times"
    first, repeat = replies
    assert first.status == 200, first.body[:200]
    assert repeat.status == 200, repeat.body[:200]
    answer = json.loads(repeat.body)
    assert answer["status"]["code"] == 0
    assert [item["id"] for item in answer["data"]["ids"]] == list(ids)


@pytest.mark.parametrize("door", DOORS)
def test_store_none_turns_deduplication_off(door: str) -> None:
    runs, replies, _ = _send_twice(DOORS[door], {"store": None})
    assert len(runs) == 2
    assert [reply.status for reply in replies] == [200, 200]


@pytest.mark.parametrize("fails", [False, True], ids=["route-returns", "route-raises"])
def test_the_fastapi_dependency_settles_in_the_stores_transaction(
    tmp_path: Any, fails: bool
) -> None:
    """The dependency lends the store's transaction as the other adapters do: what the
    route wrote commits with its events' completion, or rolls back with their release."""
    import sqlite3

    from fastapi import Depends, FastAPI

    from hubsig.fastapi import VerifiedDelivery
    from hubsig.stores.sqlite import SQLiteStore

    database = tmp_path / "events.db"
    store = SQLiteStore(database)
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE seen (trace TEXT)")
    app = FastAPI()
    verified = Depends(VerifiedDelivery(secret=SECRET, store=store))
    runs: list[str] = []

    @app.post(PATH)
    def hook(delivery: hubsig.Delivery = verified) -> dict[str, Any]:
        runs.append(delivery.trace.trace_id)
        store.transaction(delivery).execute("INSERT INTO seen VALUES (?)", ("written",))
        if fails:
            raise RuntimeError("the route failed")
        return _answer()

    request = signed_request(make_events(1), SECRET)
    statuses = []
    for send in _loop_send(app):
        for _ in range(2):
            try:
                statuses.append(send(PATH, dict(request.headers), request.body).status)
            except RuntimeError:
                statuses.append(500)  # the test client re-raises what the server would log
    with sqlite3.connect(database) as db:
        written = db.execute("SELECT count(*) FROM seen").fetchone()[0]
    store.close()
    if fails:
        assert (statuses, len(runs), written) == ([500, 500], 2, 0)
    else:
        assert (statuses, len(runs), written) == ([200, 200], 1, 1)
