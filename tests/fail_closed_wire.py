"""How the fail-closed suite's requests reach an app, each byte as an attacker chooses it.

Real servers (uvicorn, hypercorn, gunicorn) run as subprocesses on loopback
and get requests written to a raw socket, so a request target such as
``//webhooks/%69nteractions`` or ``http://host/path`` arrives unnormalised
(HTTP clients such as httpx rewrite some). In-process calls build the ASGI
scope or WSGI environ the way those servers do, so the same table also runs
in milliseconds, with settings no server offers on the command line.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from hubsig.asgi import ASGIApp, Message
from hubsig.wsgi import WSGIApp
from tests.fail_closed_apps import LOG_ENV, Recorder

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Reply:
    """What the client got back (``status`` 0: the server closed without answering)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


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


# --- in process ----------------------------------------------------------------------


def call_asgi(
    app: ASGIApp,
    loop: asyncio.AbstractEventLoop,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    root_path: str = "",
    prefixed: bool = True,
) -> Reply:
    """Call ``app`` with the scope uvicorn builds for this request line (``prefixed``: the
    path starts with ``root_path``, as uvicorn makes it; otherwise as hypercorn 0.18 does)."""
    raw_path, _, query = target.partition("?")
    path = unquote(raw_path)
    if prefixed:
        path, raw_path = root_path + path, root_path + raw_path
    listed = [(b"host", LOOPBACK.encode())]
    listed += [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
    listed.append((b"content-length", str(len(body)).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": root_path,
        "headers": listed,
        "client": (LOOPBACK, 50000),
        "server": (LOOPBACK, 8000),
        "state": {},
    }
    inbox: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    outbox: list[Message] = []

    async def receive() -> Message:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        outbox.append(message)

    try:
        loop.run_until_complete(app(scope, receive, send))
    except Exception:  # what uvicorn does: log it, and answer 500 unless the app already did
        if not any(m["type"] == "http.response.start" for m in outbox):
            return Reply(500, {}, b"Internal Server Error")
    start = next((m for m in outbox if m["type"] == "http.response.start"), None)
    if start is None:
        return Reply(0, {}, b"")
    answer = b"".join(m.get("body", b"") for m in outbox if m["type"] == "http.response.body")
    names = {
        bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
        for k, v in start.get("headers", ())
    }
    return Reply(start["status"], names, answer)


def call_wsgi(
    app: WSGIApp,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    script_name: str = "",
) -> Reply:
    """Call ``app`` with the environ gunicorn builds for this request line; ``script_name``
    is split off the path as gunicorn does with ``SCRIPT_NAME``."""
    if not target.startswith("/") and "://" not in target:
        return Reply(400, {}, b"not a request target")  # what gunicorn answers
    parts = urlsplit("." + target) if target.startswith("//") else urlsplit(target)
    path = parts.path[1:] if target.startswith("//") else parts.path
    if script_name:
        if not path.startswith(script_name):
            return Reply(400, {}, b"outside SCRIPT_NAME")
        path = path[len(script_name) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": LOOPBACK,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": LOOPBACK,
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": LOOPBACK,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    started: dict[str, Any] = {}

    def start_response(status: str, names: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = int(status.split()[0])
        started["headers"] = {k.lower(): v for k, v in names}
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        answer = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Reply(started.get("status", 0), started.get("headers", {}), answer)
