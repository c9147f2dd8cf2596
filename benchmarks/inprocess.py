"""The receivers of ``benchmarks.receivers``, called in process: ``python -m benchmarks.inprocess
[RECEIVER ...]``.

No server and no network: each receiver's ASGI app gets the same signed 4 KiB delivery
(18 events, with an ``X-B3-TraceId``) through a scope, a ``receive`` and a ``send`` of our
own, and must answer 200. Prints µs per request, the best of five interleaved rounds. This
is what hubsig's own work costs in each receiver, without a server's share diluting it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import hubsig
from benchmarks.bodies import SECRET, events_body
from benchmarks.receivers import RECEIVERS, SIZE, build

ROUNDS = 5
CALLS = 3000


def _request(body: bytes) -> tuple[list[tuple[bytes, bytes]], dict[str, Any]]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-hub-signature", hubsig.sign(body, SECRET).encode()),
        (b"x-b3-traceid", b"463ac35c9f6413ad48485a3953bb6124"),
    ]
    return headers, {"type": "http.request", "body": body, "more_body": False}


async def _call(app: Any, headers: list[tuple[bytes, bytes]], message: dict[str, Any]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/hook",
        "raw_path": b"/hook",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(sent: dict[str, Any]) -> None:
        if sent["type"] == "http.response.start":
            statuses.append(sent["status"])

    await app(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"the receiver answered {statuses}, not 200")


async def measure(names: list[str]) -> dict[str, float]:
    """µs per request of each named receiver, the best of interleaved rounds."""
    headers, message = _request(events_body(SIZE))
    apps = {name: build(name) for name in names}
    for app in apps.values():
        for _ in range(200):  # warm-up: imports, caches, the first claims
            await _call(app, headers, message)
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            started = time.perf_counter()
            for _ in range(CALLS):
                await _call(app, headers, message)
            micros = (time.perf_counter() - started) / CALLS * 1e6
            best[name] = min(best.get(name, micros), micros)
    return best


def main(argv: list[str]) -> None:
    for name, micros in asyncio.run(measure(argv or list(RECEIVERS))).items():
        print(f"{name:22s} {micros:7.1f} µs")


if __name__ == "__main__":
    main(sys.argv[1:])
