"""The receiving side of one delivery, without I/O: what every adapter drives.

An adapter builds a ``DeliveryCheck`` from the request line and headers,
hands it the resolved secret, feeds it the body as it arrives, and gets a
``Delivery`` or a ``WebhookError``; ``rejection`` turns that error into the
response to send. Checks run in the cheapest order: API key and declared
length before the body is read, the signature header before the body is
read, the signature before the body is parsed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from hubsig.config import RequestView, Resolved, WebhookConfig, run_to_completion
from hubsig.errors import BodyTooLarge, MalformedSignature, WebhookError
from hubsig.headers import Headers
from hubsig.models import EventsPayload
from hubsig.payload import parse_events
from hubsig.response import EventsResponse
from hubsig.trace import TraceContext
from hubsig.verifier import IncrementalVerification, Verification

__all__ = ["Delivery", "DeliveryCheck", "Reply", "acknowledge", "in_progress", "rejection"]

logger = logging.getLogger("hubsig")

TRACE_HEADER = "X-B3-TraceId"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery whose signature matched: its parsed payload, trace, key, and raw body."""

    payload: EventsPayload
    trace: TraceContext
    verification: Verification
    body: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP response for an adapter to send."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class DeliveryCheck:
    """One request on a guarded path, from its headers to a verified ``Delivery``.

    Building it checks the API key and the declared ``Content-Length``;
    ``start`` (or ``start_sync``) resolves the secrets and ``begin`` checks
    the signature header; ``feed`` hashes the body and
    enforces the size limit; ``finish`` verifies and parses. Each raises a
    ``WebhookError`` when the delivery must be refused.
    """

    __slots__ = ("_config", "_hashing", "request", "trace")

    def __init__(self, config: WebhookConfig, request: RequestView, trace: TraceContext) -> None:
        self._config = config
        self.request = request
        self.trace = trace
        self._hashing: IncrementalVerification | None = None
        config.check_api_key(request.headers)
        declared = declared_length(request.headers)
        if declared is not None and declared > config.max_body_size:
            raise BodyTooLarge(_too_large(config.max_body_size))

    async def start(self) -> None:
        """Resolve this request's secrets (awaiting an async resolver), then ``begin``."""
        resolved = self._config.resolve(self.request)
        if inspect.isawaitable(resolved):
            resolved = await resolved
        self.begin(resolved)

    def start_sync(self) -> None:
        """``start`` for synchronous code (WSGI): an async resolver runs on a private loop."""
        resolved = self._config.resolve(self.request)
        if inspect.isawaitable(resolved):
            resolved = run_to_completion(resolved)
        self.begin(resolved)

    def begin(self, resolved: Resolved) -> None:
        """Parse the signature header against the resolved secrets, before any body is read."""
        signatures = self.request.headers.get_all(self._config.header_name)
        if len(signatures) > 1:
            raise MalformedSignature("the request carries more than one signature header")
        verifier = self._config.verifier_for(resolved)
        self._hashing = verifier.begin(signatures[0] if signatures else None)

    def feed(self, chunk: bytes) -> None:
        """Hash the next piece of the body; ``BodyTooLarge`` past the limit."""
        hashing = self._started()
        if hashing.size + len(chunk) > self._config.max_body_size:
            raise BodyTooLarge(_too_large(self._config.max_body_size))
        hashing.update(chunk)

    def finish(self, body: bytes) -> Delivery:
        """Verify the signature over everything fed, then parse ``body`` (the same bytes)."""
        verification = self._started().verify()
        payload = parse_events(body, strict=self._config.strict)
        return Delivery(payload, self.trace, verification, body)

    def _started(self) -> IncrementalVerification:
        if self._hashing is None:
            raise RuntimeError("DeliveryCheck.begin must be called before the body is fed")
        return self._hashing


def declared_length(headers: Headers) -> int | None:
    """The ``Content-Length`` the client declared, or ``None`` if absent or unreadable."""
    value = headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def rejection(error: WebhookError, trace: TraceContext, config: WebhookConfig) -> Reply:
    """The response for a refused delivery, logged at WARNING with its reason and trace id.

    The body is an ``EventsResponse`` whose code is the error's HTTP status;
    the HTTP status is that too, or 200 when the receiver acknowledges
    rejections so that the sender stops retrying.
    """
    logger.warning(
        "refused delivery: %s (HTTP %s) trace_id=%s", error.code, error.status, trace.trace_id
    )
    status = 200 if config.acknowledge_rejections else error.status
    body = EventsResponse(error.status, f"{error.code}: {error.message}").to_json()
    return json_reply(status, body, trace)


def failure(trace: TraceContext) -> Reply:
    """The 500 for a handler or resolver that raised; the exception stays in the log."""
    return json_reply(500, EventsResponse(500, "internal error").to_json(), trace)


def in_progress(trace: TraceContext) -> Reply:
    """409 for a delivery whose event another worker is processing now; the sender retries."""
    logger.info("delivery in progress elsewhere, asking for a retry trace_id=%s", trace.trace_id)
    message = "delivery_in_progress: an event of this delivery is being processed; retry later"
    return json_reply(409, EventsResponse(409, message).to_json(), trace)


def acknowledge(ids: Iterable[str] | None, delivery: Delivery) -> Reply:
    """200 with ``ids``, or every entity id of the delivery when ``ids`` is ``None``."""
    chosen = delivery.payload.entity_ids if ids is None else tuple(ids)
    return json_reply(200, EventsResponse(0, "OK", tuple(chosen)).to_json(), delivery.trace)


def json_reply(status: int, body: bytes, trace: TraceContext) -> Reply:
    headers = (
        ("content-type", JSON_CONTENT_TYPE),
        ("content-length", str(len(body))),
        (TRACE_HEADER.lower(), trace.trace_id),
    )
    return Reply(status, headers, body)


def _too_large(limit: int) -> str:
    return f"the body is larger than this receiver's limit of {limit} bytes"
