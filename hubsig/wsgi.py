"""WSGI middleware: verify every delivery on the guarded paths before the app sees it.

Trusts ``CONTENT_LENGTH`` only as an upper bound it checks against the
limit; reads ``wsgi.input`` in pieces up to that length (or to its end when
the server marks the input terminated, as for chunked requests), hashing as
it goes. After the signature matched, the app gets a fresh ``wsgi.input``
with the same bytes and the verified ``Delivery`` at
``environ["hubsig.delivery"]`` (Flask: ``request.environ``, Django:
``request.META``).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from hubsig.access import ENVIRON_KEY
from hubsig.config import RequestView, WebhookConfig, WebhookSettings, config_from
from hubsig.dedupe import Admission, StoreUnavailable
from hubsig.errors import ConfigurationError, IncompleteBody, LengthRequired, WebhookError
from hubsig.headers import Headers
from hubsig.once import OnceGate
from hubsig.receiver import (
    TRACE_HEADER,
    Delivery,
    DeliveryCheck,
    Reply,
    acknowledge,
    declared_length,
    failure,
    in_progress,
    rejection,
)
from hubsig.trace import TraceContext, reset_current, set_current

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ENVIRON_KEY",
    "HubSignatureMiddleware",
    "StartResponse",
    "WSGIApp",
    "WSGIEnvironment",
    "refuse_async_store",
]

READ_SIZE = 64 * 1024
logger = logging.getLogger("hubsig")

WSGIEnvironment: TypeAlias = dict[str, Any]
_ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
)


class StartResponse(Protocol):
    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIApp: TypeAlias = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]


class HubSignatureMiddleware:
    """Refuses unsigned or badly signed deliveries on the guarded paths; passes the rest.

    Takes ``config=WebhookConfig(...)`` or its settings as keywords. An async
    secret resolver is run to completion on a private event loop. If the app
    raises on a verified delivery, the sender gets the 500 ``EventsResponse``.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        config: WebhookConfig | None = None,
        **settings: Unpack[WebhookSettings],
    ) -> None:
        self.app = app
        self.config = config_from(config, settings, "hubsig.wsgi.HubSignatureMiddleware")
        refuse_async_store(self.config, "hubsig.wsgi.HubSignatureMiddleware")
        self._gate = OnceGate.for_config(self.config)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self.config.guards_environ(environ):
            return self.app(environ, start_response)
        headers = Headers(_environ_headers(environ))
        trace = TraceContext.from_headers(headers)
        token = set_current(trace)
        try:
            return self._guarded(environ, headers, trace, start_response)
        finally:
            reset_current(token)

    def _guarded(
        self,
        environ: WSGIEnvironment,
        headers: Headers,
        trace: TraceContext,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        check: DeliveryCheck | None = None
        try:
            check = DeliveryCheck(self.config, request_view(environ, headers), trace)
            delivery = receive_delivery(check, environ)
        except WebhookError as error:
            return send_reply(start_response, rejection(error, trace, self.config))
        except Exception:
            logger.exception("could not check the delivery trace_id=%s", trace.trace_id)
            return send_reply(start_response, failure(trace))
        finally:
            if check is not None:
                check.release()
        admitted = None
        if self._gate is not None:
            try:
                admitted = self._gate.admit_sync(delivery)
            except StoreUnavailable:
                logger.exception("the delivery store failed trace_id=%s", trace.trace_id)
                return send_reply(start_response, failure(trace))
            if admitted.busy or admitted.fresh is None:
                reply = in_progress(trace) if admitted.busy else acknowledge(None, delivery)
                return send_reply(start_response, reply)
            delivery = replace(delivery, payload=admitted.fresh)
        environ[ENVIRON_KEY] = delivery
        environ["wsgi.input"] = io.BytesIO(delivery.body)
        environ["CONTENT_LENGTH"] = str(len(delivery.body))
        start_traced = _TracedStart(start_response, trace)
        try:
            body = self.app(environ, start_traced)
        except Exception:
            if admitted is not None:
                self._gate.settle_sync(admitted, succeeded=False)  # type: ignore[union-attr]
            logger.exception("the app failed on a delivery trace_id=%s", trace.trace_id)
            return send_reply(start_traced, failure(trace), sys.exc_info())
        if admitted is None:
            return body
        return _SettledOnClose(body, lambda: self._settle(admitted, start_traced.status, trace))

    def _settle(self, admitted: Admission, status: str, trace: TraceContext) -> None:
        """After the response: complete the claims on a 200, release them otherwise."""
        try:
            self._gate.settle_sync(admitted, status.startswith("200"))  # type: ignore[union-attr]
        except StoreUnavailable:
            logger.exception("could not record processed events trace_id=%s", trace.trace_id)


def refuse_async_store(config: WebhookConfig, adapter: str) -> None:
    """A WSGI server has no event loop to await a store on: refuse one at start-up."""
    if config.store_is_async:
        raise ConfigurationError(
            f"{adapter}: {type(config.store).__name__} is an asyncio store and WSGI has no "
            "event loop; use its synchronous form (RedisStore, not AsyncRedisStore)"
        )


def request_view(environ: WSGIEnvironment, headers: Headers) -> RequestView:
    """What a secret resolver sees of a WSGI request: its path below ``SCRIPT_NAME``."""
    return RequestView(
        environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/", headers
    )


def receive_delivery(check: DeliveryCheck, environ: WSGIEnvironment) -> Delivery:
    """Read ``wsgi.input`` through ``check``; the verified ``Delivery`` or a ``WebhookError``.

    Reads at most the declared length; without one, to the end only when the
    server marks the input terminated (PEP 3333), and a chunked body under a
    server that does not is refused with 411 rather than read as empty.
    The deadline is checked between reads: a read that blocks is bounded by
    the server's own timeout (gunicorn's ``--timeout``), not by hubsig.
    """
    check.start_sync()
    stream = environ["wsgi.input"]
    remaining = declared_length(check.request.headers)
    if remaining is None and not environ.get("wsgi.input_terminated"):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            raise LengthRequired("this server cannot read a chunked body: send Content-Length")
        remaining = 0  # PEP 3333: without a length, do not read past the end
    chunks: list[bytes] = []
    while remaining is None or remaining > 0:
        size = READ_SIZE if remaining is None else min(READ_SIZE, remaining)
        chunk = stream.read(size)
        check.check_deadline()
        if not chunk:
            if remaining is not None:
                raise IncompleteBody("the body ended before its declared Content-Length")
            break
        check.feed(chunk)
        chunks.append(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    del chunks
    return check.finish(body)


def send_reply(
    start_response: StartResponse, reply: Reply, exc_info: _ExcInfo | None = None
) -> list[bytes]:
    """Start a whole ``Reply`` and return its body iterable.

    ``Connection`` is left out: PEP 3333 forbids hop-by-hop headers from an
    application, and a WSGI server decides itself whether to keep the
    connection.
    """
    headers = [(name, value) for name, value in reply.headers if name != "connection"]
    start_response(_status_line(reply.status), headers, exc_info)
    return [reply.body]


def _environ_headers(environ: WSGIEnvironment) -> list[tuple[str, str]]:
    pairs = [
        (name[5:].replace("_", "-"), value)
        for name, value in environ.items()
        if name.startswith("HTTP_") and isinstance(value, str)
    ]
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            pairs.append((name.replace("_", "-"), environ[name]))
    return pairs


class _TracedStart:
    """``start_response`` that adds the trace id header and remembers the status line."""

    def __init__(self, start_response: StartResponse, trace: TraceContext) -> None:
        self._start_response = start_response
        self._trace_id = trace.trace_id
        self.status = ""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: _ExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        self.status = status
        if not any(name.lower() == TRACE_HEADER.lower() for name, _ in headers):
            headers = [*headers, (TRACE_HEADER, self._trace_id)]
        return self._start_response(status, headers, exc_info)


class _SettledOnClose:
    """The app's response body, with ``settle`` run when the server closes it (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], settle: Callable[[], None]) -> None:
        self._body = body
        self._settle = settle

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._settle()


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
