"""Drive the three adapters at the protocol level, with the same requests and the same observations.

``ADAPTERS`` maps a name to a function that builds a receiver from a
``WebhookConfig``, sends it a ``Sent`` request (``tests/harness.py``, which
drives the protocols themselves), and returns an ``Answer``: the status,
headers and body the sender would see, and what the app (or handler) was
given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hubsig import Delivery, EventsPayload, WebhookConfig, WebhookEndpoint
from hubsig import asgi as hubsig_asgi
from hubsig import wsgi as hubsig_wsgi
from tests.harness import Sent as Sent  # re-exported: the adapter suite's request
from tests.harness import call_wsgi, run_asgi


@dataclass
class Seen:
    """What reached the app or handler."""

    body: bytes | None = None
    delivery: Delivery | None = None
    payload: EventsPayload | None = None


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seen: list[Seen]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reached_app(self) -> bool:
        return bool(self.seen)


class AppFailure(Exception):
    """What a test app or handler raises when the request asks it to fail."""


def _ack(ids: Iterable[str]) -> bytes:
    return json.dumps(
        {"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": i} for i in ids]}}
    ).encode()


def _should_fail(headers: dict[str, str]) -> bool:
    return headers.get("x-test-fail") == "1"


# --- ASGI ---------------------------------------------------------------------


def asgi_middleware(config: WebhookConfig, sent: Sent) -> Answer:
    seen: list[Seen] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        delivery = scope.get("state", {}).get("hubsig")
        seen.append(Seen(body=body, delivery=delivery))
        if _should_fail(sent.headers):
            raise AppFailure("boom")
        payload = _ack(delivery.payload.entity_ids if delivery else ())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": payload})

    middleware = hubsig_asgi.HubSignatureMiddleware(app, config=config)
    status, headers, body = run_asgi(middleware, sent)
    return Answer(status, headers, body, seen)


# --- WSGI ---------------------------------------------------------------------


def wsgi_middleware(config: WebhookConfig, sent: Sent) -> Answer:
    seen: list[Seen] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        delivery = environ.get("hubsig.delivery")
        seen.append(Seen(body=body, delivery=delivery))
        if _should_fail(sent.headers):
            raise AppFailure("boom")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_ack(delivery.payload.entity_ids if delivery else ())]

    status, headers, body = call_wsgi(hubsig_wsgi.HubSignatureMiddleware(app, config=config), sent)
    return Answer(status, headers, body, seen)


# --- @webhook -------------------------------------------------------------------


def _endpoint(config: WebhookConfig, sent: Sent, seen: list[Seen]) -> WebhookEndpoint:
    def handler(payload: EventsPayload, delivery: Delivery) -> None:
        seen.append(Seen(body=delivery.body, delivery=delivery, payload=payload))
        if _should_fail(sent.headers):
            raise AppFailure("boom")

    return WebhookEndpoint(handler, config=config)


def endpoint_asgi(config: WebhookConfig, sent: Sent) -> Answer:
    seen: list[Seen] = []
    status, headers, body = run_asgi(_endpoint(config, sent, seen), sent)
    return Answer(status, headers, body, seen)


def endpoint_wsgi(config: WebhookConfig, sent: Sent) -> Answer:
    seen: list[Seen] = []
    status, headers, body = call_wsgi(_endpoint(config, sent, seen).wsgi, sent)
    return Answer(status, headers, body, seen)


Adapter = Callable[[WebhookConfig, Sent], Answer]
ADAPTERS: dict[str, Adapter] = {
    "asgi": asgi_middleware,
    "wsgi": wsgi_middleware,
    "webhook-asgi": endpoint_asgi,
    "webhook-wsgi": endpoint_wsgi,
}
