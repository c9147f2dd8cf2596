"""Drive the three adapters at the protocol level, with the same requests and the same observations.

``ADAPTERS`` maps a name to a function that builds a receiver from a
``WebhookConfig``, sends it a ``Sent`` request, and returns an ``Answer``:
the status, headers and body the sender would see, and what the app (or
handler) was given. The ASGI and WSGI drivers are written against the
protocols themselves, so they can send a body in chunks, leave the length
undeclared, or disconnect half-way, which framework test clients cannot.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hubsig import Delivery, EventsPayload, WebhookConfig, WebhookEndpoint
from hubsig import asgi as hubsig_asgi
from hubsig import wsgi as hubsig_wsgi


@dataclass
class Sent:
    """A request as the sender makes it."""

    chunks: list[bytes]
    headers: dict[str, str]
    path: str = "/hook"
    method: str = "POST"
    declare_length: bool = True
    disconnect_after: int | None = None  # chunks sent before the client goes away
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


@dataclass
class Seen:
    """What reached the app or handler."""

    body: bytes | None = None
    delivery: Delivery | None = None
    payload: EventsPayload | None = None


@dataclass
class Answer:
    status: int | None
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


def _asgi_scope(sent: Sent) -> dict[str, Any]:
    headers = [(k.lower().encode(), v.encode()) for k, v in sent.headers.items()]
    headers += [(k.lower().encode(), v.encode()) for k, v in sent.extra_headers]
    if sent.declare_length:
        headers.append((b"content-length", str(len(sent.body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": sent.method,
        "scheme": "http",
        "path": sent.path,
        "raw_path": sent.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }


async def _call_asgi(
    app: hubsig_asgi.ASGIApp, sent: Sent
) -> tuple[int | None, dict[str, str], bytes]:
    chunks = list(sent.chunks) or [b""]
    cut = sent.disconnect_after
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks if cut is None else chunks[:cut])
    ]
    if cut is not None:
        messages.append({"type": "http.disconnect"})
    sent_messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent_messages.append(dict(message))

    await app(_asgi_scope(sent), receive, send)
    start = next((m for m in sent_messages if m["type"] == "http.response.start"), None)
    if start is None:
        return None, {}, b""
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent_messages if m["type"] == "http.response.body")
    return start["status"], headers, body


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
    status, headers, body = asyncio.run(_call_asgi(middleware, sent))
    return Answer(status, headers, body, seen)


# --- WSGI ---------------------------------------------------------------------


def _call_wsgi(app: hubsig_wsgi.WSGIApp, sent: Sent) -> tuple[int | None, dict[str, str], bytes]:
    body = (
        sent.body
        if sent.disconnect_after is None
        else b"".join(sent.chunks[: sent.disconnect_after])
    )
    environ: dict[str, Any] = {
        "REQUEST_METHOD": sent.method,
        "PATH_INFO": sent.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if sent.declare_length:
        environ["CONTENT_LENGTH"] = str(len(sent.body))
    else:
        environ["wsgi.input_terminated"] = True
    for name, value in [*sent.headers.items(), *sent.extra_headers]:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = int(status.split()[0])
        started["headers"] = {k.lower(): v for k, v in headers}
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        response_body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return started.get("status"), started.get("headers", {}), response_body


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

    status, headers, body = _call_wsgi(hubsig_wsgi.HubSignatureMiddleware(app, config=config), sent)
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
    status, headers, body = asyncio.run(_call_asgi(_endpoint(config, sent, seen), sent))
    return Answer(status, headers, body, seen)


def endpoint_wsgi(config: WebhookConfig, sent: Sent) -> Answer:
    seen: list[Seen] = []
    status, headers, body = _call_wsgi(_endpoint(config, sent, seen).wsgi, sent)
    return Answer(status, headers, body, seen)


Adapter = Callable[[WebhookConfig, Sent], Answer]
ADAPTERS: dict[str, Adapter] = {
    "asgi": asgi_middleware,
    "wsgi": wsgi_middleware,
    "webhook-asgi": endpoint_asgi,
    "webhook-wsgi": endpoint_wsgi,
}
