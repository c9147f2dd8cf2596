"""``delivery_of``: the verified delivery from any request, or ``NotVerified``, never a guess."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import hubsig
from hubsig.asgi import HubSignatureMiddleware
from hubsig.fastapi import VerifiedDelivery
from hubsig.testing import make_events, signed_request
from tests.harness import Sent, asgi_scope, call_asgi

SECRET = "access-secret"
Verified = Annotated[hubsig.Delivery, Depends(VerifiedDelivery(secret=SECRET))]


def _delivery() -> hubsig.Delivery:
    body = make_events().to_json()
    return hubsig.Delivery(
        hubsig.parse_events(body),
        hubsig.TraceContext.new(),
        hubsig.Verification("sha1", 0),
        body,
    )


def test_reads_scope_environ_and_request_objects() -> None:
    delivery = _delivery()
    scope = {"type": "http", "state": {"hubsig": delivery}}
    environ = {"REQUEST_METHOD": "POST", "hubsig.delivery": delivery}
    assert hubsig.delivery_of(scope) is delivery
    assert hubsig.delivery_of(environ) is delivery
    assert hubsig.delivery_of(SimpleNamespace(scope=scope)) is delivery  # Starlette, Quart
    assert hubsig.delivery_of(SimpleNamespace(environ=environ)) is delivery  # Flask, werkzeug
    assert hubsig.delivery_of(SimpleNamespace(META=environ)) is delivery  # Django (WSGI)
    django_asgi = SimpleNamespace(META={"REQUEST_METHOD": "POST"}, scope=scope)
    assert hubsig.delivery_of(django_asgi) is delivery


@pytest.mark.parametrize(
    "request_like",
    [
        {"type": "http", "state": {}},
        {"type": "http", "state": {"hubsig": "forged"}},
        {"type": "http", "state": {"hubsig": {"payload": "forged"}}},
        {"hubsig.delivery": "forged", "HTTP_HUBSIG_DELIVERY": "forged"},
        SimpleNamespace(scope={"type": "http"}),
        SimpleNamespace(scope={"type": "http", "state": {"hubsig": "forged"}}),
        SimpleNamespace(scope={"type": "http", "state": ["hubsig"]}),
        SimpleNamespace(scope="a string"),
        SimpleNamespace(),
        None,
        "a string",
    ],
)
def test_anything_but_a_verified_delivery_is_not_verified(
    request_like: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(hubsig.NotVerified) as raised:
        hubsig.delivery_of(request_like)
    assert raised.value.status == 401
    assert [r.levelno for r in caplog.records if r.name == "hubsig"] == [logging.ERROR]


def _app(guarded: list[str]) -> tuple[Starlette, list[str]]:
    ran: list[str] = []

    def read(request: Request) -> hubsig.Delivery:
        # Through a helper of its own: the start-up check reads the handler's code only,
        # so this is the case where delivery_of itself is the safety net.
        return hubsig.delivery_of(request)

    async def hook(request: Request) -> JSONResponse:
        delivery = read(request)
        ran.append(request.url.path)
        return JSONResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())

    routes = [Route("/hook", hook, methods=["POST"]), Route("/other", hook, methods=["POST"])]
    app = Starlette(routes=routes)
    return HubSignatureMiddleware(app, secret=SECRET, paths=guarded), ran  # type: ignore[return-value]


def test_a_handler_on_a_path_left_unguarded_cannot_run_unverified() -> None:
    app, ran = _app(["/hook"])
    client = TestClient(app, raise_server_exceptions=False)
    unsigned = make_events().to_json()
    assert client.post("/other", content=unsigned).status_code == 500
    assert ran == []
    request = signed_request(make_events().to_json(), SECRET)
    assert client.post("/hook", content=request.body, headers=request.headers).status_code == 200
    assert ran == ["/hook"]


def test_state_is_per_request_even_if_a_server_shares_one_dict() -> None:
    """A server that hands every request the same ``state`` must not leak a delivery."""
    shared: dict[str, Any] = {}
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["state"].get("hubsig"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = HubSignatureMiddleware(app, secret=SECRET, paths=["/hook"])
    body = make_events().to_json()
    headers = dict(signed_request(body, SECRET).headers)

    async def run(path: str, request_headers: dict[str, str]) -> None:
        sent = Sent([body], request_headers, path=path)
        await call_asgi(middleware, sent, scope=asgi_scope(sent, state=shared))

    asyncio.run(run("/hook", headers))
    asyncio.run(run("/open", {}))
    assert isinstance(seen[0], hubsig.Delivery)
    assert seen[1] is None
    assert "hubsig" not in shared


def test_the_fastapi_dependency_leaves_the_delivery_for_delivery_of() -> None:
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request, delivery: Verified) -> dict[str, object]:
        assert hubsig.delivery_of(request) is delivery
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    request = signed_request(make_events(2).to_json(), SECRET)
    answer = TestClient(app).post("/hook", content=request.body, headers=request.headers)
    assert answer.status_code == 200
    assert len(answer.json()["data"]["ids"]) == 2


def test_the_fastapi_dependency_keeps_the_delivery_through_background_tasks_only() -> None:
    """delivery_of(request) works in the route and its background tasks; the scope a
    server keeps afterwards (uvicorn: until the connection's next request) holds it no more."""
    app = FastAPI()
    scopes: list[Any] = []
    in_background: list[hubsig.Delivery] = []

    @app.post("/hook")
    async def hook(
        request: Request, delivery: Verified, tasks: BackgroundTasks
    ) -> dict[str, object]:
        scopes.append(request.scope)
        tasks.add_task(lambda: in_background.append(hubsig.delivery_of(request)))
        return hubsig.events_response(delivery.payload.entity_ids).to_dict()

    request = signed_request(make_events(2).to_json(), SECRET)
    answer = TestClient(app).post("/hook", content=request.body, headers=request.headers)
    assert answer.status_code == 200
    assert in_background[0].payload.entity_ids == tuple(
        i["id"] for i in answer.json()["data"]["ids"]
    )
    with pytest.raises(hubsig.NotVerified):
        hubsig.delivery_of(scopes[0])
