"""Instructions per request of each receiver under uvicorn, the server's own work included:
``python -m benchmarks.served_instructions [RECEIVER ...]``.

The deterministic twin of ``benchmarks.receivers`` for a machine whose throughput swings
from one second to the next: each receiver of ``benchmarks.receivers`` runs under uvicorn
(httptools) inside ``valgrind --tool=callgrind``, a client on one keep-alive connection
sends it the same signed 4 KiB delivery 60 and then (in a second run) 300 times, and the
difference of the server's instruction counts divided by 240 is one request's cost, start-up
and shut-down cancelled out. The ratio to ``fastapi-hand`` of the same run stands in for the
ratio of requests per second (fewer instructions: more requests a second), without the
machine's noise; it leaves out what instructions do not show (cache misses, system calls).
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hubsig
from benchmarks.bodies import SECRET, events_body
from benchmarks.end_to_end import _free_port, wait_until_listening
from benchmarks.receivers import SIZE

RECEIVERS = (
    "fastapi-hand",
    "fastapi-hand-router",
    "fastapi-middleware",
    "fastapi-dependency",
    "fastapi-route",
    "fastapi-route-app",
    "webhook",
    "webhook-fresh",
)
FEW, MANY = 60, 300
ROOT = Path(__file__).resolve().parent.parent


def served(name: str, requests: int) -> int:
    """The instructions the server of ``name`` ran, from start to exit, for ``requests``."""
    port = _free_port()
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.receivers", "serve", name, str(port), "uvicorn",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)  # noqa: S603
    try:
        wait_until_listening(server, port, timeout=600)
        body = events_body(SIZE)
        headers = {"content-type": "application/json", "x-hub-signature": hubsig.sign(body, SECRET)}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(requests):
            connection.request("POST", "/hook", body, headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"{name}: HTTP {answer.status}")
        connection.close()
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=300)
    found = re.search(r"Collected : (\d+)", errors)
    if found is None:
        raise RuntimeError(errors[-2000:])
    return int(found.group(1))


def per_request(name: str) -> int:
    with ThreadPoolExecutor(2) as runs:
        few, many = runs.map(lambda count: served(name, count), (FEW, MANY))
    return (many - few) // (MANY - FEW)


def main(names: list[str]) -> None:
    found = {name: per_request(name) for name in names or RECEIVERS}
    hand = found.get("fastapi-hand")
    print("| receiver | instructions per request | hand-written / receiver |\n|---|---|---|")
    for name, count in found.items():
        ratio = f"{hand / count:.2f}" if hand else "-"
        print(f"| {name} | {count:,} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1:])
