"""The answers a receiver sends: each a whole ``Reply``, built here and nowhere else.

Every answer is an ``EventsResponse`` JSON body with the trace id header;
refusals carry their reason code for logs and telemetry, and are logged
here with their trace id, so every adapter logs them the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from hubsig._delivery import Delivery
from hubsig._log_text import hubsig_logger
from hubsig._response import EventsResponse, events_json
from hubsig._trace import TraceContext
from hubsig.errors import BodyTimeout, MethodNotAllowed, ReceiverBusy, WebhookError

__all__ = [
    "JSON_CONTENT_TYPE",
    "TRACE_HEADER",
    "Reply",
    "acknowledge",
    "acknowledged",
    "failure",
    "in_progress",
    "json_reply",
    "rejection",
    "unavailable",
]

logger = hubsig_logger("hubsig")

TRACE_HEADER = "X-B3-TraceId"
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP response for an adapter to send; ``reason`` is its reason code
    (``signature_mismatch``, ...) when it refuses or fails, for logs and telemetry."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    reason: str | None = None


def rejection(error: WebhookError, trace: TraceContext, acknowledge_rejections: bool) -> Reply:
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
    status = 200 if acknowledge_rejections and not transient else error.status
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


def acknowledged(ids: tuple[str, ...], trace: TraceContext, *, plain_ids: bool = False) -> Reply:
    """200 with ``ids``: ``acknowledge`` for a delivery the flow answers without one
    (``plain_ids``: no id needs escaping, see ``events_json``)."""
    return json_reply(200, events_json(ids, plain_ids=plain_ids), trace)


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
