"""The FastAPI route class (``hubsig.fastapi.verified_route``): the router chooses the route,
hubsig verifies every request it sends there, whatever way FastAPI takes to it."""

# No "from __future__ import annotations": FastAPI reads the routes' annotations at run time.

import json
import logging
import sqlite3
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import hubsig
from hubsig.errors import ConfigurationError
from hubsig.fastapi import Verified, verified_route, verified_router
from hubsig.stores.sqlite import SQLiteStore
from hubsig.testing import make_events, signed_request

SECRET = "route-secret"
TRACE_ID = "80f198ee56343ba864fe8b2a57d3eff7"


class Ran:
    """What the guarded routes saw: one entry per run, the delivery's entity ids."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, ...]] = []
        self.bodies: list[bytes] = []


def guarded_app(ran: Ran, answer: int = 200, **settings: Any) -> FastAPI:
    """An app with the route class on a router included twice deep, beside open routes."""
    app = FastAPI()
    webhooks = APIRouter(route_class=verified_route(secret=SECRET, **settings))

    @webhooks.post("/interactions")
    async def hook(request: Request, delivery: Verified) -> JSONResponse:
        ran.runs.append(delivery.payload.entity_ids)
        ran.bodies.append(await request.body())
        if answer >= 500:
            raise HTTPException(answer, "the route failed")
        if answer == 0:
            raise RuntimeError("the route crashed")
        return JSONResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict(), answer)

    @webhooks.put("/interactions/{item}")
    async def other(item: str, delivery: Verified) -> dict[str, str]:
        ran.runs.append(delivery.payload.entity_ids)
        return {"item": item}

    outer = APIRouter()
    outer.include_router(webhooks, prefix="/hooks")
    app.include_router(outer, prefix="/v1")

    @app.api_route("/open/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def open_route(rest: str) -> dict[str, str]:
        return {"open": rest}

    return app


PATH = "/v1/hooks/interactions"


def post(client: TestClient, path: str, body: bytes, secret: str = SECRET) -> Any:
    headers = signed_request(body, secret, trace_id=TRACE_ID).headers
    return client.post(path, content=body, headers=headers)


def test_a_signed_delivery_reaches_the_route_with_its_delivery_and_body() -> None:
    ran = Ran()
    events = make_events(3)
    with TestClient(guarded_app(ran)) as client:
        answer = post(client, PATH, events.to_json())
    assert answer.status_code == 200
    assert answer.headers["x-b3-traceid"] == TRACE_ID
    assert [item["id"] for item in answer.json()["data"]["ids"]] == list(events.entity_ids)
    assert ran.runs == [events.entity_ids]
    assert ran.bodies == [events.to_json()]


@pytest.mark.parametrize("secret", ["wrong", ""], ids=["bad-signature", "no-signature"])
def test_an_unverified_delivery_is_refused_before_the_route(secret: str) -> None:
    ran = Ran()
    body = make_events(1).to_json()
    with TestClient(guarded_app(ran)) as client:
        if secret:
            answer = post(client, PATH, body, secret)
        else:
            answer = client.post(PATH, content=body, headers={"x-b3-traceid": TRACE_ID})
    assert answer.status_code == 401
    assert answer.json()["status"]["code"] == 401
    assert answer.headers["x-b3-traceid"] == TRACE_ID
    assert ran.runs == []


def test_a_method_the_route_does_not_take_is_405_and_never_runs_it() -> None:
    ran = Ran()
    with TestClient(guarded_app(ran)) as client:
        answer = client.get(PATH)
    assert answer.status_code == 405
    assert ran.runs == []


def test_a_repeat_is_acknowledged_without_running_the_route() -> None:
    ran = Ran()
    events = make_events(2)
    with TestClient(guarded_app(ran)) as client:
        first = post(client, PATH, events.to_json())
        repeat = post(client, PATH, events.to_json())
    assert (first.status_code, repeat.status_code) == (200, 200)
    assert [item["id"] for item in repeat.json()["data"]["ids"]] == list(events.entity_ids)
    assert ran.runs == [events.entity_ids]


def test_the_route_reads_only_the_events_not_processed_yet() -> None:
    ran = Ran()
    first, second = make_events(2).events
    with TestClient(guarded_app(ran)) as client:
        post(client, PATH, hubsig.EventsPayload("op-1", (first,)).to_json())
        post(client, PATH, hubsig.EventsPayload("op-2", (first, second)).to_json())
    assert ran.runs[1] == (second.entity.id,)  # type: ignore[union-attr]
    assert [event["entity"]["id"] for event in json.loads(ran.bodies[1])["data"]["entities"]] == [
        second.entity.id  # type: ignore[union-attr]
    ]


@pytest.mark.parametrize(
    ("answer", "status"),
    [(202, 202), (409, 409), (503, 503), (0, 500)],
    ids=["2xx-completes", "4xx-releases", "raises-http-503", "crashes"],
)
def test_the_routes_answer_settles_its_events(answer: int, status: int) -> None:
    """A 2xx completes the events (the repeat is acknowledged without the route); any other
    answer, raised or returned, releases them (the sender's retry runs the route again)."""
    ran = Ran()
    body = make_events(1).to_json()
    with TestClient(guarded_app(ran, answer), raise_server_exceptions=False) as client:
        replies = [post(client, PATH, body).status_code for _ in range(2)]
    if 200 <= answer < 300:
        assert (replies, len(ran.runs)) == ([status, 200], 1)
    else:
        assert (replies, len(ran.runs)) == ([status, status], 2)


def test_the_route_commits_its_writes_with_the_events(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "events.db")
    app = FastAPI()
    webhooks = APIRouter(route_class=verified_route(secret=SECRET, store=store))
    runs: list[str] = []

    @webhooks.post("/hook")
    def hook(delivery: Verified) -> dict[str, Any]:
        store.transaction(delivery).execute("CREATE TABLE IF NOT EXISTS seen (x TEXT)")
        store.transaction(delivery).execute("INSERT INTO seen VALUES ('written')")
        runs.append(delivery.trace.trace_id)
        return {"ok": True}

    app.include_router(webhooks)
    body = make_events(1).to_json()
    with TestClient(app) as client:
        statuses = [post(client, "/hook", body).status_code for _ in range(2)]
    with sqlite3.connect(tmp_path / "events.db") as db:
        count = db.execute("SELECT count(*) FROM seen").fetchone()[0]
    store.close()
    assert (statuses, len(runs), count) == ([200, 200], 1, 1)


def test_a_route_reached_without_its_handle_refuses(caplog: pytest.LogCaptureFixture) -> None:
    """The backstop: a FastAPI that called the route's app without its ``handle`` (as a
    version that routed differently would) gets a 500, never the route."""
    ran = Ran()
    route_class = verified_route(secret=SECRET)
    route = route_class("/hook", lambda: ran.runs.append(("ran",)), methods=["POST"])
    body = make_events(1).to_json()
    headers = signed_request(body, SECRET, trace_id=TRACE_ID).headers
    with caplog.at_level(logging.ERROR):  # the route's own app, called without its handle
        answer = TestClient(route.app).post("/hook", content=body, headers=headers)
    assert answer.status_code == 500
    assert answer.headers["x-b3-traceid"] == TRACE_ID
    assert ran.runs == []
    assert "without passing its handle()" in caplog.text


@pytest.mark.parametrize("name", ["paths", "exempt"])
def test_path_settings_cannot_apply_to_a_route(name: str) -> None:
    settings: dict[str, Any] = {name: ["/hook"]}
    with pytest.raises(ConfigurationError, match=f"{name}= cannot apply"):
        verified_route(secret=SECRET, **settings)


PATHS = st.lists(
    st.sampled_from(["v1", "hooks", "interactions", "open", "x", "%2F", "..", ".", "", "%0a"]),
    max_size=5,
).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, method=st.sampled_from(["POST", "PUT", "GET", "DELETE", "HEAD"]))
def test_no_unsigned_request_reaches_a_guarded_route_whatever_the_path(
    path: str, method: str
) -> None:
    """FastAPI's own router is the oracle: whatever path and method it sends to a guarded
    route, an unsigned request never runs it (and a signed one does, when routed there)."""
    ran = Ran()
    body = make_events(1).to_json()
    url = "http://testserver" + path  # whole, so that a path such as "//v1" stays a path
    with TestClient(guarded_app(ran)) as client:
        unsigned = client.request(method, url, content=body)
        assert ran.runs == [], f"{method} {path} ran the route unsigned: {unsigned.status_code}"
        headers = signed_request(body, SECRET).headers
        client.request(method, url, content=body, headers=headers)
    assert len(ran.runs) <= 1


def _refused_addition(router: APIRouter, add: str) -> None:
    async def endpoint() -> dict[str, str]:
        return {"open": "yes"}

    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({"open": "yes"})

    other = APIRouter()
    other.post("/other")(endpoint)
    additions = {
        "starlette-route": lambda: router.add_route("/legacy", plain, methods=["POST"]),
        "websocket": lambda: router.add_api_websocket_route("/stream", endpoint),
        "mount": lambda: router.mount("/static", FastAPI()),
        "include-router": lambda: router.include_router(other, prefix="/events"),
        "other-route-class": lambda: router.add_api_route(
            "/plain", endpoint, methods=["POST"], route_class_override=APIRoute
        ),
    }
    with pytest.raises(ConfigurationError, match="cannot be added to a verified router"):
        additions[add]()


@pytest.mark.parametrize(
    "add", ["starlette-route", "websocket", "mount", "include-router", "other-route-class"]
)
def test_a_verified_router_refuses_a_route_it_could_not_verify(add: str) -> None:
    """Every route of ``verified_router`` is verified: one hubsig could not guard is
    refused when it is added, never left open on the webhook router."""
    _refused_addition(verified_router(secret=SECRET), add)


def test_a_verified_routers_path_operations_are_verified() -> None:
    ran = Ran()
    webhooks = verified_router(secret=SECRET)

    @webhooks.api_route("/a", methods=["POST"])
    async def first(delivery: Verified) -> dict[str, str]:
        ran.runs.append(delivery.payload.entity_ids)
        return {}

    @webhooks.post("/b")
    async def second(delivery: Verified) -> dict[str, str]:
        ran.runs.append(delivery.payload.entity_ids)
        return {}

    app = FastAPI()
    app.include_router(webhooks, prefix="/hooks")
    body = make_events(1).to_json()
    with TestClient(app) as client:
        assert client.post("/hooks/a", content=body).status_code == 401
        assert client.post("/hooks/b", content=body).status_code == 401
        assert post(client, "/hooks/a", body).status_code == 200
    assert len(ran.runs) == 1


def _chunked(body: bytes) -> Any:
    yield body[: len(body) // 2]
    yield body[len(body) // 2 :]


@pytest.mark.parametrize("door", ["route", "middleware", "dependency"])
def test_fastapis_own_body_limit_answers_413_not_500(
    door: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A body past FastAPI's ``max_body_size`` is FastAPI's refusal to answer (413), sent
    chunked so that only the read can tell: never hubsig's 500 with an ERROR line."""
    from hubsig.asgi import HubSignatureMiddleware
    from hubsig.fastapi import VerifiedDelivery

    ran = Ran()
    app = FastAPI(max_body_size=256)
    if door == "route":
        webhooks = verified_router(secret=SECRET)

        @webhooks.post("/hook")
        async def routed(delivery: Verified) -> dict[str, str]:
            ran.runs.append(delivery.payload.entity_ids)
            return {}

        app.include_router(webhooks)
    elif door == "middleware":
        app.add_middleware(HubSignatureMiddleware, secret=SECRET)

        @app.post("/hook")
        async def behind(request: Request) -> dict[str, str]:
            ran.runs.append(hubsig.delivery_of(request).payload.entity_ids)
            return {}

    else:
        from fastapi import Depends

        verified = VerifiedDelivery(secret=SECRET)

        @app.post("/hook")
        async def depends(delivery: hubsig.Delivery = Depends(verified)) -> dict[str, str]:  # noqa: B008
            ran.runs.append(delivery.payload.entity_ids)
            return {}

    body = make_events(20).to_json()
    headers = {"x-hub-signature": "sha1=" + "0" * 40, "x-b3-traceid": TRACE_ID}
    with caplog.at_level(logging.INFO), TestClient(app, raise_server_exceptions=False) as client:
        answer = client.post("/hook", content=_chunked(body), headers=headers)
    assert answer.status_code == 413
    assert ran.runs == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
