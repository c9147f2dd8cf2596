"""The receivers of ``benchmarks.receivers``, called in process: ``python -m benchmarks.inprocess
[RECEIVER ...]``.

No server and no network: each receiver's ASGI app gets the same signed 4 KiB delivery
(18 events, with an ``X-B3-TraceId``) from ``benchmarks.adapters.asgi_request``, and must
answer 200. Prints µs per request, the best of five interleaved rounds: what hubsig's own
work costs in each receiver, without a server's share diluting it.
"""

from __future__ import annotations

import asyncio
import sys
import time

from benchmarks.adapters import asgi_request
from benchmarks.bodies import events_body
from benchmarks.receivers import RECEIVERS, SIZE, build

ROUNDS = 5
CALLS = 3000


async def measure(names: list[str]) -> dict[str, float]:
    """µs per request of each named receiver, the best of interleaved rounds."""
    call = asgi_request(events_body(SIZE))
    apps = {name: build(name) for name in names}
    for app in apps.values():
        for _ in range(200):  # warm-up: imports, caches, the first claims
            await call(app)
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            started = time.perf_counter()
            for _ in range(CALLS):
                await call(app)
            micros = (time.perf_counter() - started) / CALLS * 1e6
            best[name] = min(best.get(name, micros), micros)
    return best


def main(argv: list[str]) -> None:
    for name, micros in asyncio.run(measure(argv or list(RECEIVERS))).items():
        print(f"{name:22s} {micros:7.1f} µs")


if __name__ == "__main__":
    main(sys.argv[1:])
