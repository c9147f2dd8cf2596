"""How the fail-closed suite's requests reach an app, each byte as an attacker chooses it.

Real servers (uvicorn, hypercorn, gunicorn) run as subprocesses on loopback
and get requests written to a raw socket, so a request target such as
``//webhooks/%69nteractions`` or ``http://host/path`` arrives unnormalised
(HTTP clients such as httpx rewrite some). In process, ``tests/harness.py``
builds the ASGI scope or WSGI environ the way those servers do, so the same
table also runs in milliseconds.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fail_closed_apps import LOG_ENV, Recorder
from tests.harness import LOOPBACK, Reply

ROOT = Path(__file__).resolve().parent.parent


# --- real servers --------------------------------------------------------------------


def raw_request(
    port: int, method: str, target: str, headers: Mapping[str, str], body: bytes
) -> Reply:
    """Write one HTTP/1.1 request byte for byte (``target`` as given) and read the answer."""
    head = [f"{method} {target} HTTP/1.1", f"Host: {LOOPBACK}:{port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    with socket.create_connection((LOOPBACK, port), timeout=15) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            return Reply(0, {}, b"")
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


@dataclass
class RealServer:
    """A server subprocess on a loopback port, and the log its handlers record to."""

    name: str
    port: int
    recorder: Recorder
    process: subprocess.Popen[bytes]
    output: Path

    def send(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        return raw_request(self.port, method, target, headers, body)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(kind: str, port: int, root_path: str) -> list[str]:
    """The command line that serves the suite's deployments with ``kind`` on ``port``."""
    bind = f"{LOOPBACK}:{port}"
    if kind == "uvicorn":
        command = [
            *("-m", "uvicorn", "--factory", "tests.fail_closed_apps:asgi_server_app"),
            *("--host", LOOPBACK, "--port", str(port), "--log-level", "warning"),
            "--no-access-log",
            # h11, whatever else is installed: httptools refuses some spellings itself (400),
            # and the suite's expectations of which reach hubsig are written for h11.
            *("--http", "h11"),
        ]
        return [*command, "--root-path", root_path] if root_path else command
    if kind == "hypercorn":
        command = ["-m", "hypercorn", "tests.fail_closed_apps:asgi_server_app()", "--bind", bind]
        return [*command, "--root-path", root_path] if root_path else command
    if kind == "gunicorn":
        return [
            *("-m", "gunicorn", "tests.fail_closed_apps:wsgi_server_app()", "--bind", bind),
            *("--workers", "2", "--preload", "--log-level", "warning"),
        ]
    raise ValueError(kind)


@contextmanager
def real_servers(
    specs: Mapping[str, tuple[str, str]], workdir: Path
) -> Iterator[dict[str, RealServer]]:
    """Start every ``name: (kind, root_path)`` server at once, wait for all, stop them after."""
    with ExitStack() as stack:
        servers: dict[str, RealServer] = {}
        for name, (kind, root_path) in specs.items():
            port = _free_port()
            log = workdir / f"{name}.log"
            output = workdir / f"{name}.out"
            env = {**os.environ, LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, *server_command(kind, port, root_path)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            stack.callback(_stop, process)
            servers[name] = RealServer(name, port, Recorder(log), process, output)
        for server in servers.values():
            _wait_until_serving(server)
        yield servers


def _wait_until_serving(server: RealServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if server.send("GET", "/", {}, b"").status:
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not start:\n{server.output.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
