"""The one in-process harness: call an ASGI or WSGI app as a server would, byte for byte.

``Sent`` is a request as the client sends it: a request target (``//x``,
``%69``, absolute-form, ... kept as written), headers, a body in chunks, and
what the server adds (``root_path`` / ``SCRIPT_NAME``). ``asgi_scope`` and
``wsgi_environ`` build what uvicorn and gunicorn build of it; ``call_asgi``,
``run_asgi`` and ``call_wsgi`` call an app with it and return the ``Reply``.
The protocols are driven directly, so a body can come in chunks, without a
declared length, or stop with a disconnect, which framework test clients
cannot do. Real servers on loopback: ``tests/fail_closed_wire.py``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, unquote_to_bytes, urlsplit

LOOPBACK = "127.0.0.1"

Message = dict[str, Any]


class Reply(NamedTuple):
    """What the client got back (``status`` 0: the app never started an answer)."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Sent:
    """A request as the client sends it, and what the server sets around it.

    ``path`` is the request target as written on the request line.
    ``prefixed``: the ASGI ``path`` includes ``root_path`` (uvicorn, Starlette
    mounts) or not (hypercorn 0.18). ``disconnect_after``: chunks sent before
    the client goes away.
    """

    chunks: list[bytes]
    headers: dict[str, str]
    path: str = "/hook"
    method: str = "POST"
    declare_length: bool = True
    disconnect_after: int | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    root_path: str = ""
    prefixed: bool = True

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def sent_body(self) -> bytes:
        """The bytes that reach the server before any disconnect."""
        if self.disconnect_after is None:
            return self.body
        return b"".join(self.chunks[: self.disconnect_after])

    def header_list(self) -> list[tuple[str, str]]:
        return [*self.headers.items(), *self.extra_headers]


def request(
    method: str, target: str, headers: Mapping[str, str], body: bytes, **options: Any
) -> Sent:
    """A one-chunk request: ``request("POST", "//hook", headers, body, root_path="/api")``."""
    return Sent([body], dict(headers), path=target, method=method, **options)


# --- ASGI ----------------------------------------------------------------------------


def asgi_scope(sent: Sent, **extra: Any) -> dict[str, Any]:
    """The HTTP scope uvicorn builds for ``sent`` (``extra`` keys added or replaced)."""
    raw_path, _, query = sent.path.partition("?")
    path = unquote(raw_path)
    if sent.prefixed:
        path, raw_path = sent.root_path + path, sent.root_path + raw_path
    headers = [(b"host", LOOPBACK.encode())]
    headers += [  # a value as its client wrote it: UTF-8 (ASCII, for the well-behaved)
        (name.lower().encode("latin-1"), value.encode("utf-8"))
        for name, value in sent.header_list()
    ]
    if sent.declare_length:
        headers.append((b"content-length", str(len(sent.body)).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": sent.method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": sent.root_path,
        "headers": headers,
        "client": (LOOPBACK, 50000),
        "server": (LOOPBACK, 8000),
        "state": {},
    }
    return {**scope, **extra}


def asgi_messages(sent: Sent) -> list[Message]:
    """The ``receive`` messages of ``sent``: its chunks, then a disconnect if it has one."""
    chunks = sent.chunks or [b""]
    cut = sent.disconnect_after
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks if cut is None else chunks[:cut])
    ]
    if cut is not None:
        messages.append({"type": "http.disconnect"})
    return messages


def read_reply(messages: list[Message]) -> Reply:
    """The ``Reply`` that the ``send`` messages of an app make."""
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:
        return Reply(0, {}, b"")
    headers = {
        bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
        for k, v in start.get("headers", ())
    }
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Reply(start["status"], headers, body)


async def call_asgi(
    app: Any,
    sent: Sent,
    *,
    answer_errors: bool = False,
    scope: dict[str, Any] | None = None,
    receive: Callable[[], Awaitable[Message]] | None = None,
) -> Reply:
    """Call ``app`` with ``sent``; after its chunks, ``receive`` says the client left.

    ``answer_errors``: an exception the app raises becomes a 500, as uvicorn
    answers it (unless the app had started its answer); otherwise it propagates.
    ``scope`` and ``receive`` replace the ones made of ``sent`` (a client that
    stalls or drips, say).
    """
    inbox = asgi_messages(sent)
    outbox: list[Message] = []

    async def receive_sent() -> Message:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(0)
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        outbox.append(dict(message))

    try:
        await app(
            asgi_scope(sent) if scope is None else scope,
            receive_sent if receive is None else receive,
            send,
        )
    except Exception:
        if not answer_errors:
            raise
        if not any(m["type"] == "http.response.start" for m in outbox):
            return Reply(500, {}, b"Internal Server Error")
    return read_reply(outbox)


def run_asgi(
    app: Any,
    sent: Sent,
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    answer_errors: bool = False,
) -> Reply:
    """``call_asgi`` to completion, on ``loop`` (kept by the caller) or a new one."""
    call = call_asgi(app, sent, answer_errors=answer_errors)
    return asyncio.run(call) if loop is None else loop.run_until_complete(call)


# --- WSGI ----------------------------------------------------------------------------


def wsgi_environ(sent: Sent, **extra: Any) -> dict[str, Any]:
    """The environ gunicorn builds for ``sent``, ``root_path`` as its ``SCRIPT_NAME``.

    Raises ``ValueError`` for what gunicorn answers with 400 itself: a target
    that is no path, or one outside ``SCRIPT_NAME``.
    """
    target = sent.path
    if not target.startswith("/") and "://" not in target:
        raise ValueError("not a request target")
    parts = urlsplit("." + target) if target.startswith("//") else urlsplit(target)
    path = parts.path[1:] if target.startswith("//") else parts.path
    if sent.root_path:
        if not path.startswith(sent.root_path):
            raise ValueError("outside SCRIPT_NAME")
        path = path[len(sent.root_path) :]
    environ: dict[str, Any] = {
        "REQUEST_METHOD": sent.method,
        "SCRIPT_NAME": sent.root_path,
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": parts.query,
        "SERVER_NAME": LOOPBACK,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": LOOPBACK,
        "HTTP_HOST": LOOPBACK,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(sent.sent_body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if sent.declare_length:
        environ["CONTENT_LENGTH"] = str(len(sent.body))
    else:
        environ["wsgi.input_terminated"] = True
    for name, value in sent.header_list():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return {**environ, **extra}


def call_wsgi(app: Any, sent: Sent, *, environ: dict[str, Any] | None = None) -> Reply:
    """Call ``app`` with ``sent`` (or with ``environ`` as given), read its whole answer and
    close it, as a server does; a target gunicorn refuses is its 400, the app not called."""
    if environ is None:
        try:
            environ = wsgi_environ(sent)
        except ValueError as refused:
            return Reply(400, {}, str(refused).encode())
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started["status"] = int(status.split()[0])
        started["headers"] = {k.lower(): v for k, v in headers}
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Reply(started.get("status", 0), started.get("headers", {}), body)
