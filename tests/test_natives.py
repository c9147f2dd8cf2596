"""The framework natives through each framework's own test client: Django, Flask, aiohttp."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient as AiohttpClient
from aiohttp.test_utils import TestServer
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import clear_url_caches, path
from flask import Flask, request

import hubsig
from hubsig.stores import MemoryStore
from hubsig.testing import make_events, signed_request
from tests import django_site

SECRET = "natives-secret"
PATH = "/webhooks/interactions"


def _signed(events: int = 2, **options: Any) -> tuple[bytes, dict[str, str]]:
    sent = signed_request(make_events(events), SECRET, **options)
    return sent.body, sent.headers


# --- Django -------------------------------------------------------------------------------


@pytest.fixture
def django_routes() -> Callable[[Callable[..., Any]], None]:
    django_site.configure()

    def route(view: Callable[..., Any]) -> None:
        django_site.urlpatterns[:] = [path(PATH.lstrip("/"), view)]
        clear_url_caches()

    return route


def test_django_view_from_settings_csrf_exempt_post_only(
    django_routes: Callable[[Callable[..., Any]], None],
) -> None:
    from hubsig.django import webhook_view

    ran: list[str] = []
    with override_settings(HUBSIG={"secret": SECRET, "scheme": "genesys-multicloud"}):

        @webhook_view()
        def interactions(request: HttpRequest) -> JsonResponse:
            delivery = hubsig.delivery_of(request)
            assert request.body == delivery.body  # still readable
            ran.append(delivery.trace.trace_id)
            return JsonResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    django_routes(interactions)
    client = Client(enforce_csrf_checks=True)
    body, headers = _signed()
    answer = client.post(PATH, body, content_type="application/json", headers=headers)
    assert answer.status_code == 200
    assert len(answer.json()["data"]["ids"]) == 2
    assert answer["X-B3-TraceId"] == ran[0]
    tampered_body, tampered = _signed(tamper=True)
    refused = client.post(PATH, tampered_body, content_type="application/json", headers=tampered)
    assert refused.status_code == 401
    assert refused.json()["status"]["message"].startswith("signature_mismatch:")
    got = client.get(PATH, headers=headers)
    assert (got.status_code, got["Allow"]) == (405, "POST")
    sha256 = signed_request(make_events(), SECRET, algorithm="sha256")
    downgrade = client.post(
        PATH, sha256.body, content_type="application/json", headers=sha256.headers
    )
    assert downgrade.status_code == 401  # genesys-multicloud: sha1 only
    assert len(ran) == 1


def test_django_async_view_processes_each_event_once(
    django_routes: Callable[[Callable[..., Any]], None],
) -> None:
    from hubsig.django import webhook_view

    seen: list[str] = []

    @webhook_view(secret=SECRET, store=MemoryStore())
    async def interactions(request: HttpRequest) -> JsonResponse:
        delivery = hubsig.delivery_of(request)
        seen.extend(delivery.payload.entity_ids)
        return JsonResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    django_routes(interactions)
    body, headers = _signed(3)

    async def twice() -> list[int]:
        client = AsyncClient()
        answers = [
            await client.post(PATH, body, content_type="application/json", headers=headers)
            for _ in range(2)
        ]
        return [a.status_code for a in answers]

    assert asyncio.run(twice()) == [200, 200]
    assert len(seen) == 3


def test_django_app_refuses_a_wrong_hubsig_setting_at_start_up() -> None:
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    django_site.configure()
    from hubsig.django.apps import HubsigConfig

    app_config = HubsigConfig("hubsig.django", __import__("hubsig.django").django)
    with (
        override_settings(HUBSIG={"secret": SECRET, "max_body_size": "1MB"}),
        pytest.raises(ImproperlyConfigured, match=r"settings.HUBSIG: max_body_size"),
    ):
        app_config.ready()
    with (
        override_settings(HUBSIG={"secret": None}),
        pytest.raises(ImproperlyConfigured, match=r"settings.HUBSIG\['secret'\] is None"),
    ):
        app_config.ready()
    assert apps.ready


# --- Flask --------------------------------------------------------------------------------


def _flask_app(**config: Any) -> tuple[Flask, list[object]]:
    from hubsig.flask import HubSig

    app = Flask(__name__)
    app.config.update(config)
    webhooks = HubSig(app)
    seen: list[object] = []

    @app.post(PATH)
    @webhooks.webhook_view()
    def interactions() -> dict[str, object]:
        delivery = hubsig.delivery_of(request)
        assert request.get_json() == json.loads(delivery.body)
        seen.extend(delivery.payload.entity_ids)
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    return app, seen


def test_flask_extension_configured_from_app_config() -> None:
    app, seen = _flask_app(HUBSIG_SECRET=SECRET, HUBSIG_STORE=MemoryStore())
    client = app.test_client()
    body, headers = _signed(2)
    for _ in range(2):  # the retry is acknowledged without running the view again
        answer = client.post(PATH, data=body, headers=headers)
        assert answer.status_code == 200
        assert answer.headers["X-B3-TraceId"] == headers["X-B3-TraceId"]
    assert len(seen) == 2
    assert (
        client.post(
            PATH, data=body, headers={**headers, "X-Hub-Signature": "sha1=" + "0" * 40}
        ).status_code
        == 401
    )
    assert client.get(PATH).status_code == 405  # Flask's own: the route takes POST only


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"HUBSIG_SECRET": SECRET, "HUBSIG_SECRETT": "x"}, "HUBSIG_SECRETT'] is not a hubsig"),
        ({"HUBSIG_SECRET": None}, "HUBSIG_SECRET'] is None"),
        ({"HUBSIG_SECRET": SECRET, "HUBSIG_SCHEME": "gihub"}, "must be one of"),
        ({}, "secret= is required"),
    ],
)
def test_flask_extension_refuses_a_mistake_when_the_app_is_built(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(hubsig.ConfigurationError, match=message):
        _flask_app(**config)


# --- aiohttp ------------------------------------------------------------------------------


def _aiohttp(
    app: web.Application,
    scenario: Callable[[AiohttpClient[web.Request, web.Application]], Awaitable[None]],
) -> None:
    async def run() -> None:
        async with AiohttpClient(TestServer(app)) as client:
            await scenario(client)

    asyncio.run(run())


def test_aiohttp_middleware_guards_its_paths_streams_and_dedupes() -> None:
    from hubsig.aiohttp import hubsig_middleware

    seen: list[str] = []

    async def interactions(request: web.Request) -> web.Response:
        delivery = hubsig.delivery_of(request)
        assert await request.json() == json.loads(delivery.body)
        seen.extend(delivery.payload.entity_ids)
        return web.json_response(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    guard = hubsig_middleware(
        secret=SECRET, paths=[PATH], store=MemoryStore(), api_keys=["k"], max_body_size=4096
    )
    app = web.Application(middlewares=[guard])
    app.router.add_post(PATH, interactions)
    app.router.add_get("/health", health)
    body, headers = _signed(2)
    headers["x-api-key"] = "k"

    async def scenario(client: AiohttpClient[web.Request, web.Application]) -> None:
        assert (await client.get("/health")).status == 200
        for _ in range(2):
            answer = await client.post(PATH, data=body, headers=headers)
            assert answer.status == 200
            assert answer.headers["X-B3-TraceId"] == headers["X-B3-TraceId"]
        no_key = await client.post(PATH, data=body, headers={**headers, "x-api-key": "no"})
        assert no_key.status == 401
        big, big_headers = _signed(40)

        async def stream() -> Any:  # chunked, no Content-Length: the limit bites mid-stream
            for start in range(0, len(big), 1000):
                yield big[start : start + 1000]

        too_big = await client.post(PATH, data=stream(), headers={**big_headers, "x-api-key": "k"})
        assert too_big.status == 413
        assert (await client.get(PATH, headers=headers)).status == 405

    _aiohttp(app, scenario)
    assert len(seen) == 2


def test_aiohttp_handler_decorator() -> None:
    from hubsig.aiohttp import webhook_handler

    @webhook_handler(secret=SECRET)
    async def interactions(request: web.Request) -> web.Response:
        delivery = hubsig.delivery_of(request)
        return web.json_response(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    app = web.Application()
    app.router.add_route("*", PATH, interactions)
    body, headers = _signed(1)

    async def scenario(client: AiohttpClient[web.Request, web.Application]) -> None:
        assert (await client.post(PATH, data=body, headers=headers)).status == 200
        assert (await client.post(PATH, data=body + b" ", headers=headers)).status == 401

    _aiohttp(app, scenario)


def test_aiohttp_paths_are_relative_to_a_sub_application() -> None:
    """The rule of every other adapter: paths= below the mount point (add_subapp)."""
    from hubsig.aiohttp import hubsig_middleware

    ran: list[str] = []

    async def interactions(request: web.Request) -> web.Response:
        ran.append(request.path)
        return web.json_response({})

    sub = web.Application(middlewares=[hubsig_middleware(secret=SECRET, paths=[PATH])])
    sub.router.add_post(PATH, interactions)
    app = web.Application()
    app.add_subapp("/api", sub)
    body, headers = _signed(1)

    async def scenario(client: AiohttpClient[web.Request, web.Application]) -> None:
        forged = await client.post("/api" + PATH, data=b'{"forged": true}')
        assert forged.status == 401
        assert (await client.post("/api" + PATH, data=body, headers=headers)).status == 200

    _aiohttp(app, scenario)
    assert ran == ["/api" + PATH]


def test_any_2xx_from_the_app_completes_the_claims() -> None:
    """A 204 is a success too: a replay must not run the handler again."""
    from hubsig.aiohttp import hubsig_middleware

    runs: list[int] = []

    async def interactions(request: web.Request) -> web.Response:
        runs.append(1)
        return web.Response(status=204)

    app = web.Application(middlewares=[hubsig_middleware(secret=SECRET, store=MemoryStore())])
    app.router.add_post(PATH, interactions)
    body, headers = _signed(1)

    async def scenario(client: AiohttpClient[web.Request, web.Application]) -> None:
        statuses = [(await client.post(PATH, data=body, headers=headers)).status for _ in range(3)]
        assert statuses == [204, 200, 200]  # the replays are acknowledged by hubsig

    _aiohttp(app, scenario)
    assert len(runs) == 1


def test_django_body_over_its_own_limit_is_413_not_500(
    django_routes: Callable[[Callable[..., Any]], None],
) -> None:
    from hubsig.django import webhook_view

    @webhook_view(secret=SECRET, max_body_size=4 * 1024 * 1024)
    def interactions(request: HttpRequest) -> JsonResponse:
        raise AssertionError("never reached")

    django_routes(interactions)
    body = b"x" * 200_000
    headers = {"X-Hub-Signature": "sha1=" + "0" * 40}
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100_000):
        answer = Client().post(PATH, body, content_type="application/json", headers=headers)
    assert answer.status_code == 413
    head = Client().head(PATH, headers=headers)
    assert (head.status_code, head.content) == (405, b"")  # a HEAD answer has no body


def test_flask_async_views_and_the_decorator_order() -> None:
    from hubsig.flask import HubSig

    app = Flask(__name__)
    app.config["HUBSIG_SECRET"] = SECRET
    webhooks = HubSig(app)

    @app.post(PATH)
    @webhooks.webhook_view()
    async def interactions() -> dict[str, object]:
        delivery = hubsig.delivery_of(request)
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    def late() -> dict[str, object]:
        return {}

    app.add_url_rule("/late", view_func=late, methods=["POST"])
    with pytest.raises(hubsig.ConfigurationError, match="put @webhook_view\\(\\) beneath"):
        webhooks.webhook_view()(late)
    body, headers = _signed(1)
    assert app.test_client().post(PATH, data=body, headers=headers).status_code == 200


# --- a decorator without its parentheses: hubsig's message, at import -----------------------


def _a_view() -> str:
    return "unguarded"


def test_flask_webhook_view_without_parentheses_says_to_add_them() -> None:
    from hubsig.flask import HubSig, webhook_view

    with pytest.raises(TypeError, match=r"use @hubsig\.flask\.webhook_view\(secret=\.\.\.\) with"):
        webhook_view(_a_view)  # type: ignore[arg-type]  # what a bare @webhook_view does
    webhooks = HubSig(Flask(__name__), secret=SECRET)
    with pytest.raises(TypeError, match=r"webhook_view\(\) with parentheses, above _a_view"):
        webhooks.webhook_view(_a_view)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="HubSig takes the Flask app, not _a_view"):
        HubSig(_a_view)  # type: ignore[arg-type]  # @HubSig on a view


def test_django_webhook_view_without_parentheses_says_to_add_them() -> None:
    django_site.configure()
    from hubsig.django import webhook_view

    with pytest.raises(TypeError, match=r"use @hubsig\.django\.webhook_view\(\) with parentheses"):
        webhook_view(_a_view)  # type: ignore[arg-type]


def test_a_bare_aiohttp_handler_decorator_says_to_add_the_parentheses() -> None:
    from hubsig.aiohttp import webhook_handler

    async def interactions(request: object) -> None:
        return None

    with pytest.raises(TypeError, match=r"webhook_handler\(secret=...\) with parentheses"):
        webhook_handler(interactions)  # type: ignore[arg-type]
