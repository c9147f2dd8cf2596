"""``hubsig.asgi``: the pure ASGI middleware, as an ASGI server drives it.

What the adapter suite (``tests/test_adapters.py``) runs through every
adapter is not repeated here; these are the ASGI middleware's own promises:
other scope types pass untouched, the app reads the body it would have read
without hubsig, a failing app is answered like ``@webhook``'s, and mistakes
fail at construction.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import hubsig
from hubsig.asgi import HubSignatureMiddleware
from hubsig.testing import make_events, signed_request
from tests.harness import Reply, Sent, asgi_scope, call_asgi, run_asgi

SECRET = "asgi-secret"


def signed(body: bytes, path: str = "/hook", chunks: int = 1) -> Sent:
    headers = dict(signed_request(body, SECRET).headers)
    size = -(-len(body) // chunks)
    return Sent([body[i : i + size] for i in range(0, len(body), size)], headers, path=path)


class App:
    """An ASGI app that reads the whole body, records what it got, and answers 200."""

    def __init__(self, fail: str = "") -> None:
        self.fail = fail  # "before" or "after" it starts its answer
        self.calls: list[tuple[str, bytes, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            self.calls.append((scope["type"], b"", None))
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            delivery: hubsig.Delivery | None = hubsig.delivery_of(scope)
        except hubsig.NotVerified:  # an exempt path
            delivery = None
        self.calls.append((scope["path"], body, delivery))
        if self.fail == "before":
            raise RuntimeError("the app failed before answering")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if self.fail == "after":
            raise RuntimeError("the app failed while answering")
        await send({"type": "http.response.body", "body": b"done"})


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
def test_other_scopes_go_straight_to_the_app(kind: str) -> None:
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET)

    async def receive() -> dict[str, Any]:
        raise AssertionError("the middleware must not read another scope's messages")

    async def send(message: Any) -> None:
        raise AssertionError("the middleware must not answer another scope")

    asyncio.run(middleware({"type": kind, "asgi": {"version": "3.0"}}, receive, send))
    assert app.calls == [(kind, b"", None)]


def test_the_app_reads_the_verified_body_unchanged_whatever_its_chunks() -> None:
    body = make_events(5).to_json()
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET)
    reply = run_asgi(middleware, signed(body, chunks=7))
    assert (reply.status, reply.body) == (200, b"done")
    [(path, read, delivery)] = app.calls
    assert (path, read) == ("/hook", body)
    assert isinstance(delivery, hubsig.Delivery)
    assert delivery.body == body


def test_an_unsigned_delivery_never_reaches_the_app_but_an_exempt_path_does() -> None:
    body = make_events(1).to_json()
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET, exempt=["/health"])
    refused = run_asgi(middleware, Sent([body], {}, path="/hook"))
    assert refused.status == 401
    assert json.loads(refused.body)["status"]["message"].startswith("missing_signature")
    assert app.calls == []
    passed = run_asgi(middleware, Sent([body], {}, path="/health"))
    assert passed.status == 200
    assert app.calls[0][:2] == ("/health", body)


def test_an_app_that_fails_before_answering_gets_the_500_events_response() -> None:
    middleware = HubSignatureMiddleware(App(fail="before"), secret=SECRET)
    reply = run_asgi(middleware, signed(make_events(1).to_json()))
    assert reply.status == 500
    assert json.loads(reply.body)["status"]["code"] == 500


def test_an_app_that_fails_after_it_started_answering_is_left_to_the_server() -> None:
    middleware = HubSignatureMiddleware(App(fail="after"), secret=SECRET)
    with pytest.raises(RuntimeError, match="while answering"):
        run_asgi(middleware, signed(make_events(1).to_json()))


def test_the_delivery_is_gone_from_the_scope_once_answered() -> None:
    """A server may keep a connection's scope: the delivery must not outlive its answer."""
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET)
    sent = signed(make_events(1).to_json())
    scope = asgi_scope(sent)
    reply: Reply = asyncio.run(call_asgi(middleware, sent, scope=scope))
    assert reply.status == 200
    with pytest.raises(hubsig.NotVerified):
        hubsig.delivery_of(scope)


@pytest.mark.parametrize(
    "settings",
    [{"secrett": SECRET}, {}, {"secret": SECRET, "max_body_size": -1}],
    ids=["misspelt", "no-secret", "negative-limit"],
)
def test_a_mistake_fails_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(hubsig.ConfigurationError):
        HubSignatureMiddleware(App(), **settings)


class _NeverWorks:
    """An asyncio store whose ``check()`` says it can never work (a wrong password, say)."""

    blocking = False

    async def claim(self, keys: Any, lease: float, token: str) -> list[Any]:
        raise AssertionError("never reached: the start-up failed")

    async def complete(self, keys: Any, retention: float, token: str) -> None: ...

    async def release(self, keys: Any, token: str) -> None: ...

    async def renew(self, keys: Any, lease: float, token: str) -> None: ...

    async def check(self) -> None:
        raise hubsig.ConfigurationError("the store refused hubsig's password")


def test_an_async_store_that_can_never_work_fails_the_lifespan_start_up() -> None:
    """The server exits at start-up (``lifespan.startup.failed``) instead of answering 500
    to every delivery."""
    sent: list[dict[str, Any]] = []
    started: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()  # the server's lifespan.startup, through hubsig's check
        started.append(True)
        await send({"type": "lifespan.startup.complete"})

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    middleware = HubSignatureMiddleware(app, secret=SECRET, store=_NeverWorks())
    with pytest.raises(hubsig.ConfigurationError, match="can never work"):
        asyncio.run(middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    assert started == []
    assert sent == [
        {"type": "lifespan.startup.failed", "message": "the store refused hubsig's password"}
    ]
