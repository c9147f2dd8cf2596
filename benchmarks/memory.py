"""Peak memory of one large delivery through the adapters, against the bare app (tracemalloc).

The body arrives in 64 KiB chunks made during the measurement, as a server
makes them. The bare app keeps the chunks and joins them, as any app that
reads the body does; what hubsig adds above that is what this reports.
"""

from __future__ import annotations

import asyncio
import gc
import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import hubsig
from benchmarks.adapters import bare_asgi, bare_wsgi
from benchmarks.bodies import SECRET, events_body
from hubsig.asgi import HubSignatureMiddleware
from hubsig.wsgi import HubSignatureMiddleware as WSGIHubSignatureMiddleware

CHUNK = 64 * 1024


def padded_body(size: int) -> bytes:
    """A realistic 4 KiB payload padded with JSON whitespace to ``size`` bytes."""
    return events_body(4096) + b" " * (size - 4096)


def _peak(run: Callable[[], None]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _asgi_run(app: Any, body: bytes) -> Callable[[], None]:
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"x-hub-signature", hubsig.sign(body, SECRET).encode()),
    ]

    def run() -> None:
        view = memoryview(body)
        offsets = iter(range(0, len(body), CHUNK))

        async def receive() -> dict[str, Any]:
            start = next(offsets, None)
            if start is None:
                return {"type": "http.disconnect"}
            chunk = bytes(view[start : start + CHUNK])  # a fresh buffer, as a server reads one
            return {"type": "http.request", "body": chunk, "more_body": start + CHUNK < len(body)}

        async def send(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise AssertionError(message["status"])

        scope = {"type": "http", "method": "POST", "path": "/hook", "headers": headers}
        asyncio.run(app(scope, receive, send))

    return run


def _wsgi_run(app: Any, body: bytes) -> Callable[[], None]:
    def run() -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/hook",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_HUB_SIGNATURE": hubsig.sign(body, SECRET),
            "wsgi.input": io.BufferedReader(io.BytesIO(body), buffer_size=CHUNK),  # type: ignore[arg-type]
        }
        statuses: list[str] = []
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise AssertionError(statuses)

    return run


def rows(size: int = 16 * 1024 * 1024) -> list[dict[str, Any]]:
    body = padded_body(size)
    limit = 2 * size
    cases = {
        ("asgi", "bare ASGI app"): _asgi_run(bare_asgi, body),
        ("asgi", "HubSignatureMiddleware"): _asgi_run(
            HubSignatureMiddleware(bare_asgi, secret=SECRET, max_body_size=limit), body
        ),
        ("wsgi", "bare WSGI app"): _wsgi_run(bare_wsgi, body),
        ("wsgi", "wsgi.HubSignatureMiddleware"): _wsgi_run(
            WSGIHubSignatureMiddleware(bare_wsgi, secret=SECRET, max_body_size=limit), body
        ),
    }
    peaks = {key: _peak(run) for key, run in cases.items()}
    result = []
    for (protocol, name), peak in peaks.items():
        bare = peaks[(protocol, f"bare {protocol.upper()} app")]
        result.append(
            {
                "protocol": protocol,
                "name": name,
                "size": size,
                "peak_mib": peak / 2**20,
                "above_bare_in_bodies": (peak - bare) / size,
            }
        )
    return result
