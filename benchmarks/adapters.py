"""Per-request cost of the adapters, in process, without a network: a bare app that reads the
body, the same app behind hubsig's middleware, behind a Starlette ``BaseHTTPMiddleware``
doing the same check, and the ``@webhook`` endpoint; for ASGI and for WSGI."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import hubsig
from benchmarks.bodies import SECRET, events_body
from benchmarks.timing import per_call, per_call_async
from hubsig.asgi import HubSignatureMiddleware
from hubsig.wsgi import HubSignatureMiddleware as WSGIHubSignatureMiddleware

ANSWER = b'{"status":{"code":0,"message":"OK"},"data":{"ids":[]}}'
JSON_HEADERS = [(b"content-type", b"application/json")]


async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    """What any receiver does at least: read the whole body, answer 200."""
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    b"".join(chunks)
    await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


def base_http_middleware(app: Any) -> BaseHTTPMiddleware:
    """The same check written the common Starlette way, with ``await request.body()``."""
    verifier = hubsig.Verifier(SECRET)

    async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
        body = await request.body()
        try:
            verifier.verify(body, request.headers.get("x-hub-signature"))
            request.state.hubsig = hubsig.parse_events(body)
        except hubsig.WebhookError as error:
            return JSONResponse({"error": error.code}, status_code=error.status)
        return await call_next(request)

    return BaseHTTPMiddleware(app, dispatch=dispatch)


def starlette_app() -> Starlette:
    """The usual shape of a receiver: a Starlette route that reads the body and answers JSON."""

    async def hook(request: Request) -> Response:
        await request.body()
        return Response(ANSWER, media_type="application/json")

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def asgi_request(body: bytes) -> Callable[[Any], Awaitable[None]]:
    """A function that sends one signed delivery to an ASGI app and checks it got a 200."""
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-hub-signature", hubsig.sign(body, SECRET).encode()),
        (b"x-b3-traceid", b"463ac35c9f6413ad48485a3953bb6124"),
    ]
    message = {"type": "http.request", "body": body, "more_body": False}

    async def call(app: Any) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/hook",
            "raw_path": b"/hook",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        pending = [message]
        status = []

        async def receive() -> Any:
            return pending.pop() if pending else {"type": "http.disconnect"}

        async def send(sent: Any) -> None:
            if sent["type"] == "http.response.start":
                status.append(sent["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise AssertionError(f"expected 200, got {status}")

    return call


def bare_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [ANSWER]


def wsgi_request(body: bytes) -> Callable[[Any], None]:
    template = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/hook",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_HUB_SIGNATURE": hubsig.sign(body, SECRET),
        "HTTP_X_B3_TRACEID": "463ac35c9f6413ad48485a3953bb6124",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }

    def call(app: Any) -> None:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        status = []

        def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(line)
            return None

        b"".join(app(environ, start_response))
        if not status or not status[0].startswith("200"):
            raise AssertionError(f"expected 200, got {status}")

    return call


async def handler(payload: hubsig.EventsPayload) -> None:
    return None


def asgi_rows(size: int = 4096) -> list[dict[str, Any]]:
    body = events_body(size)
    call = asgi_request(body)
    endpoint = hubsig.webhook(secret=SECRET)(handler)
    apps: dict[str, Any] = {
        "bare ASGI app": bare_asgi,
        "HubSignatureMiddleware": HubSignatureMiddleware(bare_asgi, secret=SECRET),
        "BaseHTTPMiddleware, same check": base_http_middleware(bare_asgi),
        "@webhook endpoint": endpoint,
    }
    seconds = per_call_async({name: (lambda app=app: call(app)) for name, app in apps.items()})
    rows = _rows("asgi", size, seconds, "bare ASGI app")
    starlette = starlette_app()
    apps = {
        "Starlette app": starlette,
        "Starlette app + HubSignatureMiddleware": HubSignatureMiddleware(starlette, secret=SECRET),
        "Starlette app + BaseHTTPMiddleware, same check": base_http_middleware(starlette),
    }
    seconds = per_call_async({name: (lambda app=app: call(app)) for name, app in apps.items()})
    return rows + _rows("asgi", size, seconds, "Starlette app")


def wsgi_rows(size: int = 4096) -> list[dict[str, Any]]:
    body = events_body(size)
    call = wsgi_request(body)
    endpoint = hubsig.webhook(secret=SECRET)(handler)
    apps: dict[str, Any] = {
        "bare WSGI app": bare_wsgi,
        "wsgi.HubSignatureMiddleware": WSGIHubSignatureMiddleware(bare_wsgi, secret=SECRET),
        "@webhook endpoint .wsgi": endpoint.wsgi,
    }
    for app in apps.values():
        call(app)
    seconds = per_call({name: (lambda app=app: call(app)) for name, app in apps.items()})
    return _rows("wsgi", size, seconds, "bare WSGI app")


def _rows(protocol: str, size: int, seconds: dict[str, float], bare: str) -> list[dict[str, Any]]:
    return [
        {
            "protocol": protocol,
            "size": size,
            "name": name,
            "us": value * 1e6,
            "ratio_to_bare": value / seconds[bare],
        }
        for name, value in seconds.items()
    ]
