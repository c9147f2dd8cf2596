"""The adapters in real frameworks and servers: Starlette, FastAPI, Flask, Django, uvicorn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Flask
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from werkzeug.test import Client as WerkzeugClient

import hubsig
from hubsig import Delivery, EventsPayload, WebhookEndpoint
from hubsig.asgi import HubSignatureMiddleware
from hubsig.fastapi import DeliveryRejected, VerifiedDelivery, rejected_response
from hubsig.testing import signed_request
from hubsig.wsgi import HubSignatureMiddleware as WSGIHubSignatureMiddleware
from tests import django_site
from tests.servers import uvicorn_server, wsgiref_server

SECRET = "framework-secret"
PATH = "/webhooks/interactions"
TRACE_ID = "80f198ee56343ba864fe8b2a57d3eff7"
BODY = json.dumps(
    {
        "operationId": "op-9",
        "data": {
            "entities": [{"event": "FINISHED", "entity": {"id": "i-1", "mediaType": "email"}}]
        },
    }
).encode()


def headers_for(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return signed_request(body, secret, trace_id=TRACE_ID).headers


def ids(response: Any) -> list[str]:
    return [item["id"] for item in response.json()["data"]["ids"]]


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["x-b3-traceid"] == TRACE_ID
    assert response.json()["status"]["message"].startswith(code + ":")


# --- Starlette and FastAPI with the middleware ----------------------------------


async def starlette_hook(request: Request) -> JSONResponse:
    delivery: Delivery = request.state.hubsig
    assert await request.body() == delivery.body  # the app can still read the body
    assert hubsig.current_trace() == delivery.trace
    return JSONResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def starlette_app() -> Starlette:
    app = Starlette(
        routes=[
            Route(PATH, starlette_hook, methods=["POST"]),
            Route("/health", health),
            WebSocketRoute("/ws", echo_socket),
        ]
    )
    app.add_middleware(HubSignatureMiddleware, secret=SECRET, paths=[PATH])
    return app


def fastapi_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(HubSignatureMiddleware, secret=SECRET, paths=[PATH])

    @app.post(PATH)
    async def hook(request: Request) -> dict[str, Any]:
        delivery: Delivery = request.state.hubsig
        assert await request.body() == delivery.body
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    @app.get("/health")
    async def fastapi_health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture(params=["starlette", "fastapi"])
def asgi_client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    app = starlette_app() if request.param == "starlette" else fastapi_app()
    with TestClient(app) as client:
        yield client


def test_asgi_frameworks_accept_a_good_delivery(asgi_client: TestClient) -> None:
    response = asgi_client.post(PATH, content=BODY, headers=headers_for(BODY))
    assert response.status_code == 200
    assert ids(response) == ["i-1"]
    assert response.headers["x-b3-traceid"] == TRACE_ID


def test_asgi_frameworks_refuse_bad_deliveries(asgi_client: TestClient) -> None:
    bad = asgi_client.post(PATH, content=BODY, headers=headers_for(BODY, "wrong"))
    assert_refused(bad, 401, "signature_mismatch")
    unsigned = asgi_client.post(PATH, content=BODY, headers={"X-B3-TraceId": TRACE_ID})
    assert_refused(unsigned, 401, "missing_signature")
    not_json = asgi_client.post(PATH, content=b"{", headers=headers_for(b"{"))
    assert_refused(not_json, 400, "malformed_payload")


def test_asgi_frameworks_pass_other_paths_through(asgi_client: TestClient) -> None:
    assert asgi_client.get("/health").status_code == 200


def test_websockets_and_lifespan_pass_through() -> None:
    with TestClient(starlette_app()) as client, client.websocket_connect("/ws") as socket:
        socket.send_text("hello")
        assert socket.receive_text() == "hello"


# --- FastAPI dependency for one route --------------------------------------------


def dependency_app(handler: bool) -> FastAPI:
    app = FastAPI()
    verified = VerifiedDelivery(secret=SECRET)
    if handler:
        app.add_exception_handler(DeliveryRejected, rejected_response)

    @app.post(PATH)
    async def hook(delivery: Delivery = Depends(verified)) -> dict[str, Any]:  # noqa: B008
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    return app


def test_fastapi_dependency_verifies_one_route() -> None:
    with TestClient(dependency_app(handler=True)) as client:
        good = client.post(PATH, content=BODY, headers=headers_for(BODY))
        assert ids(good) == ["i-1"]
        assert good.headers["x-b3-traceid"] == TRACE_ID
        bad = client.post(PATH, content=BODY, headers=headers_for(BODY, "wrong"))
        assert_refused(bad, 401, "signature_mismatch")


def test_fastapi_dependency_without_handler_still_answers_the_right_status() -> None:
    with TestClient(dependency_app(handler=False)) as client:
        bad = client.post(PATH, content=BODY, headers=headers_for(BODY, "wrong"))
        assert bad.status_code == 401
        assert bad.headers["x-b3-traceid"] == TRACE_ID
        assert bad.json()["detail"].startswith("signature_mismatch:")


# --- @webhook mounted in Starlette and FastAPI ------------------------------------


def decorated() -> WebhookEndpoint:
    """A fresh endpoint (each remembers the events it processed, so tests do not share one)."""

    @hubsig.webhook(secret=SECRET)
    async def endpoint(payload: EventsPayload) -> list[str]:
        return [f"seen-{entity_id}" for entity_id in payload.entity_ids]

    return endpoint


def test_webhook_endpoint_as_a_starlette_route_and_a_fastapi_mount() -> None:
    apps: list[Any] = [Starlette(routes=[Route(PATH, decorated(), methods=["POST"])])]
    fastapi = FastAPI()
    fastapi.mount("/webhooks", Starlette(routes=[Mount("/interactions", decorated())]))
    apps.append(fastapi)
    for app in apps:
        with TestClient(app) as client:
            response = client.post(PATH, content=BODY, headers=headers_for(BODY))
            assert response.status_code == 200
            assert ids(response) == ["seen-i-1"]
            refused = client.post(PATH, content=BODY, headers=headers_for(BODY, "wrong"))
            assert_refused(refused, 401, "signature_mismatch")


# --- uvicorn, end to end -----------------------------------------------------------


def test_middleware_under_uvicorn_end_to_end() -> None:
    with uvicorn_server(starlette_app()) as base, httpx.Client(base_url=base, timeout=10) as http:
        good = http.post(PATH, content=BODY, headers=headers_for(BODY))
        assert good.status_code == 200
        assert ids(good) == ["i-1"]
        assert good.headers["x-b3-traceid"] == TRACE_ID
        assert_refused(
            http.post(PATH, content=BODY, headers=headers_for(BODY, "x")), 401, "signature_mismatch"
        )
        assert http.get("/health").text == "ok"

        def chunked(body: bytes, size: int) -> Iterator[bytes]:
            for start in range(0, len(body), size):
                yield body[start : start + size]

        streamed = http.post(PATH, content=chunked(BODY, 5), headers=headers_for(BODY))
        assert streamed.status_code == 200
        big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
        too_big = http.post(PATH, content=big, headers=headers_for(big))
        assert_refused(too_big, 413, "body_too_large")
        too_big_streamed = http.post(
            PATH, content=chunked(big[: 1024 * 1024 + 100], 16384), headers=headers_for(big)
        )
        assert_refused(too_big_streamed, 413, "body_too_large")


def test_webhook_endpoint_alone_under_uvicorn() -> None:
    with uvicorn_server(decorated()) as base, httpx.Client(base_url=base, timeout=10) as http:
        response = http.post("/anything", content=BODY, headers=headers_for(BODY))
        assert response.status_code == 200
        assert ids(response) == ["seen-i-1"]


def test_overlapping_deliveries_under_uvicorn() -> None:
    """Not a benchmark: many overlapping deliveries each get their own verdict and trace."""

    async def send_all(base: str) -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def one(n: int) -> tuple[int, str]:
                secret = SECRET if n % 3 else "wrong"
                headers = {**headers_for(BODY, secret), "X-B3-TraceId": f"{n + 1:032x}"}
                response = await http.post(PATH, content=BODY, headers=headers)
                return response.status_code, response.headers["x-b3-traceid"]

            return await asyncio.gather(*(one(n) for n in range(60)))

    with uvicorn_server(starlette_app()) as base:
        results = asyncio.run(send_all(base))
    for n, (status, trace_id) in enumerate(results):
        assert status == (200 if n % 3 else 401)
        assert trace_id == f"{n + 1:032x}"


# --- Flask ---------------------------------------------------------------------------


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.post(PATH)
    def hook() -> dict[str, Any]:
        delivery: Delivery = flask_request.environ["hubsig.delivery"]
        assert flask_request.get_data() == delivery.body
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    @app.get("/health")
    def flask_health() -> str:
        return "ok"

    app.wsgi_app = WSGIHubSignatureMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, secret=SECRET, paths=[PATH]
    )
    return app


def assert_serves_deliveries(client: Any) -> None:
    """A WSGI test client (Flask's or werkzeug's) accepts a good delivery and refuses a bad one."""
    good = client.post(PATH, data=BODY, headers=headers_for(BODY))
    assert good.status_code == 200
    assert [item["id"] for item in good.get_json()["data"]["ids"]] == ["i-1"]
    assert good.headers["X-B3-TraceId"] == TRACE_ID
    bad = client.post(PATH, data=BODY, headers=headers_for(BODY, "wrong"))
    assert bad.status_code == 401
    assert bad.get_json()["status"]["message"].startswith("signature_mismatch:")


def test_flask_test_client() -> None:
    client = flask_app().test_client()
    assert_serves_deliveries(client)
    assert client.get("/health").data == b"ok"


def test_flask_under_a_real_wsgi_server() -> None:
    with wsgiref_server(flask_app()) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert ids(http.post(PATH, content=BODY, headers=headers_for(BODY))) == ["i-1"]
        assert_refused(
            http.post(PATH, content=BODY, headers=headers_for(BODY, "x")), 401, "signature_mismatch"
        )
        big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
        assert_refused(
            http.post(PATH, content=big, headers=headers_for(big)), 413, "body_too_large"
        )


def test_webhook_endpoint_wsgi_under_a_real_server() -> None:
    with wsgiref_server(decorated().wsgi) as base, httpx.Client(base_url=base, timeout=10) as http:
        assert ids(http.post("/x", content=BODY, headers=headers_for(BODY))) == ["seen-i-1"]


# --- Django ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_application() -> Any:
    django_site.configure()
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    def hook(request: HttpRequest) -> JsonResponse:
        delivery: Delivery = hubsig.delivery_of(request)
        assert request.body == delivery.body
        return JsonResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    django_site.urlpatterns[:] = [path(PATH.lstrip("/"), csrf_exempt(hook))]
    return WSGIHubSignatureMiddleware(get_wsgi_application(), secret=SECRET, paths=[PATH])


def test_django_view_behind_the_wsgi_middleware(django_application: Any) -> None:
    assert_serves_deliveries(WerkzeugClient(django_application))


def test_django_under_a_real_wsgi_server(django_application: Any) -> None:
    with (
        wsgiref_server(django_application) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        assert ids(http.post(PATH, content=BODY, headers=headers_for(BODY))) == ["i-1"]


def test_hubsig_dependency_is_the_fastapi_module_under_its_former_name() -> None:
    import hubsig.dependency
    import hubsig.fastapi

    assert hubsig.dependency.__all__  # the names it had when it was the dependency's home
    for name in hubsig.dependency.__all__:
        assert getattr(hubsig.dependency, name) is getattr(hubsig.fastapi, name)
