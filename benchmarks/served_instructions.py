"""Instructions per request of each receiver under its server, the server's own work included:
``python -m benchmarks.served_instructions [RECEIVER ...]``.

The deterministic twin of ``benchmarks.receivers`` for a machine whose throughput swings
from one second to the next: each receiver of ``benchmarks.receivers`` runs under uvicorn
(httptools), the Flask and Django ones under gunicorn (one sync worker; every process it
starts is counted), inside ``valgrind --tool=callgrind``; a client sends it the same signed
4 KiB delivery 60 and then (in a second run) 300 times, on one keep-alive connection where
the server keeps one, and the difference of the instruction counts divided by 240 is one
request's cost, start-up and shut-down cancelled out. The ratio to the hand-written receiver
of the same framework stands in for the ratio of requests per second (fewer instructions:
more requests a second), without the machine's noise; it leaves out what instructions do not
show (cache misses, system calls).
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hubsig
from benchmarks import receivers
from benchmarks.bodies import SECRET, events_body
from benchmarks.end_to_end import _free_port, wait_until_listening
from benchmarks.receivers import SIZE

RECEIVERS = tuple(
    name
    for name in (*receivers.RECEIVERS, *receivers.WSGI_RECEIVERS)
    if name not in ("fastapi-pydantic", "asgi-middleware")  # the wall-clock run has those
)
FEW, MANY = 60, 300
ROOT = Path(__file__).resolve().parent.parent


def served(name: str, requests: int) -> int:
    """The instructions the server of ``name`` ran, from start to exit, for ``requests``."""
    port = _free_port()
    server_name = "gunicorn" if name.startswith(("flask-", "django-")) else "uvicorn"
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", "--trace-children=yes",
        sys.executable, "-m", "benchmarks.receivers", "serve", name, str(port), server_name,
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
    found = re.findall(r"Collected : (\d+)", errors)  # gunicorn: its master's and worker's
    if not found:
        raise RuntimeError(errors[-2000:])
    return sum(map(int, found))


def per_request(name: str) -> int:
    with ThreadPoolExecutor(2) as runs:
        few, many = runs.map(lambda count: served(name, count), (FEW, MANY))
    return (many - few) // (MANY - FEW)


def main(names: list[str]) -> None:
    found = {name: per_request(name) for name in names or RECEIVERS}
    print("| receiver | instructions per request | hand-written / receiver |\n|---|---|---|")
    for name, count in found.items():
        hand = found.get(_hand_of(name))
        ratio = f"{hand / count:.2f}" if hand else "-"
        print(f"| {name} | {count:,} | {ratio} |")


def _hand_of(name: str) -> str:
    """The hand-written receiver of ``name``'s framework, its baseline."""
    framework = name.split("-", 1)[0]
    return f"{framework}-hand" if framework in ("flask", "django") else "fastapi-hand"


if __name__ == "__main__":
    main(sys.argv[1:])
