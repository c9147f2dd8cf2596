"""The kit for WSGI frameworks: read a body, start a reply, run a flow, guard a path.

Nothing here decides anything: ``serve`` runs the delivery flow for one
request, with the WSGI ways of reading and answering; ``guarded`` asks the
one path guard about an environ. ``hubsig.wsgi``, ``hubsig.flask`` and
``@webhook`` are written on it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import Any, Protocol, TypeAlias

from hubsig._body import NextChunkSync, read_body_sync
from hubsig._check import DeliveryCheck
from hubsig._config import RequestView
from hubsig._delivery import Delivery
from hubsig._drive import drive_sync
from hubsig._flow import Outcome, deliver
from hubsig._headers import Headers
from hubsig._log_text import hubsig_logger
from hubsig._paths import PathGuard, must_verify
from hubsig._receiver import Receiver
from hubsig._replies import TRACE_HEADER, Reply
from hubsig._routes import ExemptRoutes
from hubsig._trace import TraceContext, reset_current, set_current
from hubsig.errors import ConfigurationError, IncompleteBody, LengthRequired

__all__ = [
    "READ_SIZE",
    "StartResponse",
    "TracedStart",
    "WSGIApp",
    "WSGIEnvironment",
    "deliver_sync",
    "environ_headers",
    "guarded",
    "read_body",
    "refuse_async_store",
    "request_view",
    "routed_path",
    "send_reply",
    "serve",
    "wsgi_chunks",
]

READ_SIZE = 64 * 1024
"""The most bytes one read of ``wsgi.input`` asks for."""
logger = hubsig_logger("hubsig")

WSGIEnvironment: TypeAlias = dict[str, Any]
"""A WSGI environ (PEP 3333)."""
ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
)


class StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], Any]: ...


WSGIApp: TypeAlias = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]
"""Any WSGI application."""


def serve(
    receiver: Receiver,
    environ: WSGIEnvironment,
    start_response: StartResponse,
    handle: Callable[[Delivery, TracedStart], tuple[Outcome, Iterable[bytes]]],
) -> Iterable[bytes]:
    """Answer one request on a guarded path: the flow decides, this reads and starts.

    ``handle`` runs the app or handler on the verified delivery and returns
    its outcome and, when it answered itself, its response body.
    """
    headers = Headers(environ_headers(environ))
    trace = TraceContext.from_headers(headers)
    traced = TracedStart(start_response, trace)
    answered: list[Iterable[bytes]] = []

    def run(delivery: Delivery) -> Outcome:
        outcome, body = handle(delivery, traced)
        answered.append(body)
        return outcome

    reply = deliver_sync(
        receiver,
        request_view(environ, headers),
        trace,
        lambda check: read_body(check, environ),
        run,
    )
    if reply is None:
        return answered[0]
    if not traced.status:
        return send_reply(traced, reply)
    # The app had answered, but its events could not be recorded: its status line is
    # replaced (nothing is sent before the middleware returns) and its body dropped.
    close = getattr(answered[0], "close", None) if answered else None
    if close is not None:
        close()
    try:
        raise RuntimeError("the app's answer is replaced: its events were not recorded")
    except RuntimeError:
        return send_reply(traced, reply, sys.exc_info())


def deliver_sync(
    receiver: Receiver,
    request: RequestView,
    trace: TraceContext,
    read_body: Callable[[DeliveryCheck], bytes],
    handle: Callable[[Delivery], Outcome],
) -> Reply | None:
    """Run the delivery flow for one request in blocking code, ``trace`` current meanwhile
    (``deliver`` and ``drive_sync`` under ``use_trace``, without a context manager's cost):
    the ``Reply`` to send, or ``None`` when ``handle``'s app has answered."""
    token = set_current(trace)
    try:
        return drive_sync(deliver(receiver, request, trace, time.monotonic()), read_body, handle)
    finally:
        reset_current(token)


def routed_path(environ: Mapping[str, Any], name: str = "PATH_INFO") -> str | None:
    """``PATH_INFO`` as werkzeug and Django route it: UTF-8, from the Latin-1 that PEP 3333
    carries it in; ``None`` for bytes that are not UTF-8 (the frameworks would replace or
    re-escape them, so no plain reading exists)."""
    raw: str = environ.get(name) or ""
    if raw.isascii():
        return raw
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None


def guarded(guard: PathGuard, environ: WSGIEnvironment, exempt: ExemptRoutes | None) -> bool:
    """Whether a WSGI request must be verified (``must_verify``): ``PATH_INFO`` as the
    router reads it, and in full with ``SCRIPT_NAME``; one that looks exempt passes only
    if the app's router sends it to an exempt route (``exempt``, see ``hubsig._routes``)."""
    if guard.guards_everything:
        return True
    path = routed_path(environ)
    root = routed_path(environ, "SCRIPT_NAME")
    if path is None or root is None:
        return True
    return must_verify(
        guard,
        path or "/",
        root + path if root else path or "/",
        lambda: exempt is not None and exempt.confirm(environ, root),
    )


def request_view(environ: WSGIEnvironment, headers: Headers) -> RequestView:
    """What a secret resolver sees of a WSGI request: its path below ``SCRIPT_NAME``,
    decoded as the frameworks decode it (bytes that are not UTF-8 replaced)."""
    method = environ.get("REQUEST_METHOD", "GET")
    raw: str = environ.get("PATH_INFO") or "/"
    path = raw
    if not raw.isascii():
        with contextlib.suppress(UnicodeEncodeError):  # a server that decoded it already
            path = raw.encode("latin-1").decode("utf-8", "replace")
    return RequestView(method, path, headers)


def read_body(check: DeliveryCheck, environ: WSGIEnvironment) -> bytes:
    """The whole body of ``wsgi.input``, each chunk fed to ``check`` (``read_body_sync``
    with ``wsgi_chunks``)."""
    return read_body_sync(check, wsgi_chunks(check, environ))


def wsgi_chunks(check: DeliveryCheck, environ: WSGIEnvironment) -> NextChunkSync:
    """The chunks of ``wsgi.input``, for ``read_body_sync``.

    Reads at most the declared length; without one, to the end only when the
    server marks the input terminated (PEP 3333), and a chunked body under a
    server that does not is refused with 411 rather than read as empty.
    """
    stream = environ["wsgi.input"]
    remaining = check.declared
    if remaining is None and not environ.get("wsgi.input_terminated"):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise LengthRequired("this server cannot read a chunked body: send Content-Length")
        remaining = 0  # PEP 3333: without a length, do not read past the end

    def next_chunk() -> tuple[bytes, bool]:
        nonlocal remaining
        if remaining is None:  # to the end of a terminated input
            chunk: bytes = stream.read(READ_SIZE)
            return chunk, not chunk
        if remaining <= 0:
            return b"", True
        chunk = stream.read(min(READ_SIZE, remaining))
        if not chunk:
            raise IncompleteBody("the body ended before its declared Content-Length")
        remaining -= len(chunk)
        return chunk, remaining <= 0

    return next_chunk


def send_reply(
    start_response: StartResponse, reply: Reply, exc_info: ExcInfo | None = None
) -> list[bytes]:
    """Start a whole ``Reply`` and return its body iterable.

    ``Connection`` is left out: PEP 3333 forbids hop-by-hop headers from an
    application, and a WSGI server decides itself whether to keep the
    connection.
    """
    headers = [(name, value) for name, value in reply.headers if name != "connection"]
    start_response(f"{reply.status} {HTTPStatus(reply.status).phrase}", headers, exc_info)
    return [reply.body]


def environ_headers(environ: WSGIEnvironment) -> list[tuple[str, str]]:
    """The request headers a WSGI environ holds, as ``(name, value)`` pairs."""
    pairs = [
        (name[5:].replace("_", "-"), value)
        for name, value in environ.items()
        if name.startswith("HTTP_") and isinstance(value, str)
    ]
    content_type = environ.get("CONTENT_TYPE")
    if content_type:
        pairs.append(("CONTENT-TYPE", content_type))
    content_length = environ.get("CONTENT_LENGTH")
    if content_length:
        pairs.append(("CONTENT-LENGTH", content_length))
    return pairs


class TracedStart:
    """``start_response`` that adds the trace id header and remembers the status line."""

    __slots__ = ("_start_response", "_trace_id", "status")

    def __init__(self, start_response: StartResponse, trace: TraceContext) -> None:
        self._start_response = start_response
        self._trace_id = trace.trace_id
        self.status = ""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None, /
    ) -> Callable[[bytes], Any]:
        self.status = status
        if not any(name.lower() == TRACE_HEADER.lower() for name, _ in headers):
            headers = [*headers, (TRACE_HEADER, self._trace_id)]
        return self._start_response(status, headers, exc_info)


def refuse_async_store(receiver: Receiver, adapter: str) -> None:
    """A WSGI server has no event loop to await a store on: refuse one at start-up."""
    if receiver.store_is_async:
        raise ConfigurationError(
            f"{adapter}: {type(receiver.store).__name__} is an asyncio store and WSGI has no "
            "event loop; use its synchronous form (RedisStore, not AsyncRedisStore)"
        )
