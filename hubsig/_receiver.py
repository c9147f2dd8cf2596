"""The receiving side of one delivery, without I/O: what every adapter drives.

An adapter builds a ``DeliveryCheck`` from the request line and headers,
hands it the resolved secret, feeds it the body as it arrives, and gets a
``Delivery`` or a ``WebhookError``; ``rejection`` turns that error into the
response to send. Checks run in the cheapest order: API key and declared
length before the body is read, the signature header before the body is
read, the signature before the body is parsed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from hubsig._config import RequestView, Resolved, WebhookConfig
from hubsig._dedupe import Claims
from hubsig._headers import Headers
from hubsig._log_text import hubsig_logger
from hubsig._models import EventsPayload
from hubsig._payload import parse_events
from hubsig._response import EventsResponse, events_json
from hubsig._secrets import Secrets
from hubsig._trace import TraceContext
from hubsig._verifier import IncrementalVerification, Verification
from hubsig.errors import (
    BodyTimeout,
    BodyTooLarge,
    MalformedRequest,
    MalformedSignature,
    MethodNotAllowed,
    ReceiverBusy,
    TooManyEvents,
    WebhookError,
)

__all__ = [
    "Delivery",
    "DeliveryCheck",
    "Reply",
    "acknowledge",
    "in_progress",
    "rejection",
    "unavailable",
]

logger = hubsig_logger("hubsig")

TRACE_HEADER = "X-B3-TraceId"
FREE_BYTES = 64 * 1024
"""The first bytes of each body, which the in-flight budget does not count."""
_MAX_LENGTH_DIGITS = 18  # far past any body limit, far short of int()'s digit limit
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery whose signature matched: its parsed payload, trace, key, and raw body.

    With a store, ``payload`` holds only the events this attempt must process,
    ``arrived`` the payload as it arrived, and ``claims`` the claims this
    attempt holds on them; ``body`` is always the body as it arrived (the
    signature covers it).
    """

    payload: EventsPayload
    trace: TraceContext
    verification: Verification
    body: bytes
    claims: Claims | None = field(default=None, repr=False, compare=False)
    arrived: EventsPayload | None = field(default=None, repr=False, compare=False)

    @property
    def arrived_ids(self) -> tuple[str, ...]:
        """Every entity id of the delivery as it arrived, duplicates included: what a 200
        acknowledges (``@webhook`` lists these; an app behind the middleware should too)."""
        return (self.arrived or self.payload).entity_ids

    def fresh_body(self) -> bytes:
        """The body with only ``payload``'s events: what an app behind the middleware reads.

        The body as it arrived when every event is fresh; otherwise the same
        JSON document with the already-processed events taken out of
        ``data.entities`` (so a route that parses the body itself cannot
        process them again). ``body`` stays the signed body.
        """
        if self.arrived is None or len(self.arrived.events) == len(self.payload.events):
            return self.body
        fresh = {id(event) for event in self.payload.events}
        keep = [i for i, event in enumerate(self.arrived.events) if id(event) in fresh]
        document = json.loads(self.body)
        entities = document["data"]["entities"]
        document["data"]["entities"] = [entities[i] for i in keep]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    @property
    def redelivered(self) -> bool:
        """Whether an earlier attempt at one of these events may have done some of its work.

        True when an event's earlier claim expired unsettled: that worker
        crashed, or its handler outlasted the lease without renewing it. A
        handler whose effects are not in the store's transaction should
        check them before doing them again.
        """
        return self.claims is not None and self.claims.redelivered


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP response for an adapter to send; ``reason`` is its reason code
    (``signature_mismatch``, ...) when it refuses or fails, for logs and telemetry."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    reason: str | None = None


class DeliveryCheck:
    """One request on a guarded path, from its headers to a verified ``Delivery``.

    Building it checks, before any body is read, the method, the API key
    and the declared ``Content-Length``; ``resolve`` asks for the secrets and
    ``use_secrets`` checks the signature header against them; ``feed`` hashes
    the body and enforces the size limit; ``finish`` verifies and parses.

    The receiver's in-flight budget is charged with each body's bytes past
    its first ``FREE_BYTES``: the declared length up front (so a body that
    cannot fit is refused before any of it is read), or, for a chunked
    body, each chunk as it arrives. A small delivery (most are a few KiB)
    is never refused because large ones fill the budget; the uncounted
    first bytes are bounded by the server's connection limit, as its own
    per-connection buffers are.
    Each raises a ``WebhookError`` when the delivery must be refused.
    ``release`` gives the reserved bytes back and must be called once the
    request is over, whatever happened.
    """

    __slots__ = (
        "_config",
        "_declared",
        "_hashing",
        "_reserved",
        "deadline",
        "observed",
        "request",
        "trace",
    )

    def __init__(self, config: WebhookConfig, request: RequestView, trace: TraceContext) -> None:
        self._config = config
        self.request = request
        self.trace = trace
        self._hashing: IncrementalVerification | None = None
        self._reserved = 0
        self.observed: dict[str, Any] | None = None
        """Set by telemetry (``hubsig.otel``) to receive ``finish``'s timings and result."""
        if not request.path.isprintable():
            # Routers disagree on such paths (Starlette's "$" matches before a final
            # newline); refused, never normalised into some other path.
            raise MalformedRequest("the request path holds a control character")
        config.check_method(request.method)
        config.check_api_key(request.headers)
        declared = declared_length(request.headers)
        if declared is not None and declared > config.max_body_size:
            raise BodyTooLarge(_too_large(config.max_body_size))
        self._declared = declared
        if declared is not None and declared > FREE_BYTES:
            self._reserve(declared - FREE_BYTES)
        self.deadline = time.monotonic() + config.body_timeout
        """When the body must have arrived (``time.monotonic()``), for adapters that poll."""

    def resolve(self) -> Resolved | Awaitable[Secrets | None]:
        """This request's secrets: the static ``Verifier``, or the resolver's answer
        (awaitable when the resolver is async)."""
        return self._config.resolve(self.request)

    def use_secrets(self, resolved: Resolved) -> None:
        """Parse the signature header against the resolved secrets, before any body is read."""
        signatures = self.request.headers.get_all(self._config.scheme_header)
        if len(signatures) > 1:
            raise MalformedSignature("the request carries more than one signature header")
        verifier = self._config.verifier_for(resolved)
        self._hashing = verifier.begin(signatures[0] if signatures else None)

    def feed(self, chunk: bytes) -> None:
        """Hash the next piece of the body; ``BodyTooLarge`` past the limit."""
        hashing = self._started()
        size = hashing.size + len(chunk)
        if size > self._config.max_body_size:
            raise BodyTooLarge(_too_large(self._config.max_body_size))
        if self._declared is None and size > FREE_BYTES:
            self._reserve(size - FREE_BYTES - self._reserved)
        hashing.update(chunk)

    def check_deadline(self) -> None:
        """Raise ``BodyTimeout`` once ``body_timeout`` has passed since the request arrived."""
        if time.monotonic() > self.deadline:
            raise self.timed_out()

    def timed_out(self) -> BodyTimeout:
        """The error for a body that did not arrive before ``deadline``."""
        return BodyTimeout(f"the body did not arrive within {self._config.body_timeout:g} seconds")

    def finish(self, body: bytes) -> Delivery:
        """Verify the signature over everything fed, then parse ``body`` (the same bytes)."""
        observed = self.observed
        if observed is None:
            verification = self._started().verify()
        else:
            observed["verifying"] = time.perf_counter_ns()
            try:
                verification = self._started().verify()
            finally:  # a refused signature is timed too
                observed["verified"] = time.perf_counter_ns()
            observed["verification"] = verification
        payload = parse_events(body, strict=self._config.strict)
        if observed is not None:
            observed["parsed"] = time.perf_counter_ns()
            observed["payload"] = payload
        if len(payload.events) > self._config.max_events:
            raise TooManyEvents(
                f"the delivery holds {len(payload.events)} events, more than this receiver's "
                f"limit of {self._config.max_events}"
            )
        return Delivery(payload, self.trace, verification, body)

    def release(self) -> None:
        """Give this request's bytes back to the in-flight budget (idempotent)."""
        if self._reserved:
            self._config.budget.release(self._reserved)
            self._reserved = 0

    def _reserve(self, size: int) -> None:
        if not self._config.budget.reserve(size):
            raise ReceiverBusy(
                "this receiver is reading as many bodies as it may hold; retry shortly",
                headers=(("retry-after", "1"),),
            )
        self._reserved += size

    def _started(self) -> IncrementalVerification:
        if self._hashing is None:
            raise RuntimeError("DeliveryCheck.begin must be called before the body is fed")
        return self._hashing


def declared_length(headers: Headers) -> int | None:
    """The ``Content-Length`` the client declared, or ``None`` if it declared none.

    Raises ``MalformedRequest`` for anything but one plain ASCII number (or
    repeats of the same number): a value such as ``²`` or 5,000 digits must
    be a 400, never a 500 or a guess.
    """
    values = headers.get_all("content-length")
    if not values:
        return None
    if len(values) == 1:
        text = values[0].strip()
    else:
        lengths = {value.strip() for value in values}
        if len(lengths) != 1:
            raise MalformedRequest("the request declares more than one Content-Length")
        (text,) = lengths
    if not (0 < len(text) <= _MAX_LENGTH_DIGITS and text.isascii() and text.isdigit()):
        raise MalformedRequest("the Content-Length header is not a number of bytes")
    return int(text)


def rejection(error: WebhookError, trace: TraceContext, config: WebhookConfig) -> Reply:
    """The response for a refused delivery, logged with its reason and trace id.

    The body is an ``EventsResponse`` whose code is the error's HTTP status;
    the HTTP status is that too, or 200 when the receiver acknowledges
    rejections so that the sender stops retrying (never for 408 and 503,
    which ask the sender to try again). Refusals are logged at WARNING; a
    wrong method, which is no delivery at all, at INFO.
    """
    level = logging.INFO if isinstance(error, MethodNotAllowed) else logging.WARNING
    logger.log(
        level,
        "refused delivery: %s (HTTP %s) trace_id=%s",
        error.code,
        error.status,
        trace.trace_id,
    )
    transient = isinstance(error, (ReceiverBusy, BodyTimeout))
    status = 200 if config.acknowledge_rejections and not transient else error.status
    body = EventsResponse(code=error.status, message=f"{error.code}: {error.message}").to_json()
    extra = error.headers
    if error.close_connection:
        extra = (*extra, ("connection", "close"))
    return replace(json_reply(status, body, trace, extra), reason=error.code)


def failure(trace: TraceContext) -> Reply:
    """The 500 for a handler or resolver that raised; the exception stays in the log."""
    body = EventsResponse(code=500, message="internal error").to_json()
    return replace(json_reply(500, body, trace), reason="internal_error")


def in_progress(trace: TraceContext) -> Reply:
    """409 for a delivery whose event another worker is processing now; the sender retries."""
    logger.info("delivery in progress elsewhere, asking for a retry trace_id=%s", trace.trace_id)
    message = "delivery_in_progress: an event of this delivery is being processed; retry later"
    body = EventsResponse(code=409, message=message).to_json()
    return replace(json_reply(409, body, trace), reason="delivery_in_progress")


def unavailable(trace: TraceContext) -> Reply:
    """503 with ``Retry-After`` for events the sink could not make durable; the sender
    retries (the cause is in the log, never in the answer)."""
    message = "sink_unavailable: the events could not be made durable; retry later"
    body = EventsResponse(code=503, message=message).to_json()
    reply = json_reply(503, body, trace, (("retry-after", "5"),))
    return replace(reply, reason="sink_unavailable")


def acknowledge(ids: Iterable[str] | None, delivery: Delivery, message: str = "OK") -> Reply:
    """200 with ``ids``, or every entity id of the delivery when ``ids`` is ``None``."""
    chosen = delivery.payload.entity_ids if ids is None else tuple(ids)
    return json_reply(200, events_json(chosen, 0, message), delivery.trace)


def json_reply(
    status: int, body: bytes, trace: TraceContext, extra: tuple[tuple[str, str], ...] = ()
) -> Reply:
    headers = (
        ("content-type", JSON_CONTENT_TYPE),
        ("content-length", str(len(body))),
        (TRACE_HEADER.lower(), trace.trace_id),
        *extra,
    )
    return Reply(status, headers, body)


def _too_large(limit: int) -> str:
    return f"the body is larger than this receiver's limit of {limit} bytes"
