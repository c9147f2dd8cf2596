"""A small async HTTP load generator, for machines without wrk:
``python -m benchmarks.load URL SECONDS CONNECTIONS BODY_FILE SIGNATURE``; prints JSON."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path

import httpx


async def run(
    url: str, seconds: float, connections: int, body: bytes, signature: str
) -> dict[str, float]:
    headers = {"X-Hub-Signature": signature, "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=nodelay)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "errors": errors,
    }


if __name__ == "__main__":
    url, seconds, connections, body_file, signature = sys.argv[1:6]
    result = asyncio.run(
        run(url, float(seconds), int(connections), Path(body_file).read_bytes(), signature)
    )
    print(json.dumps(result))
