"""The adapter kit: what it takes to put hubsig in front of a framework it does not know yet.

An adapter does I/O only. It builds a ``Receiver`` once from the settings,
and for each request on a guarded path it runs the delivery flow with
``drive`` (or ``drive_sync``), giving it two functions: one that reads the
body, feeding each chunk to the ``DeliveryCheck``, and one that runs the
app on the verified ``Delivery`` and says how it went (an ``Outcome``). The
flow returns the ``Reply`` to send, or ``None`` when the app has answered.
Verification, bounds, refusals and their logging, and claiming each event
once all happen in the flow. Every first-party adapter is written on this kit
alone (``hubsig.kit.asgi`` and ``hubsig.kit.wsgi`` add the two protocols'
ways of reading and answering); a test holds them to it.

A complete adapter for a made-up framework whose handlers take a request
with ``.method``, ``.path``, ``.headers``, ``.chunks()`` and ``.state``, and
return a ``Response(status, headers, body)``::

    import time

    from hubsig import kit

    def guarded(handler, **settings):
        receiver = kit.Receiver.of(kit.config_from(None, settings, "guarded"))

        async def endpoint(request):
            headers = kit.Headers(request.headers)
            trace = kit.TraceContext.from_headers(headers)
            answered = []

            async def read(check):
                chunks = request.chunks()

                async def next_chunk():  # the next piece, and whether it is the last
                    chunk = await anext(chunks, None)
                    return (b"", True) if chunk is None else (chunk, False)

                return await kit.read_body(check, next_chunk)

            async def handle(delivery):
                request.state[kit.ENVIRON_KEY] = delivery  # for hubsig.delivery_of
                answered.append(await handler(request))
                return kit.answered(answered[0].status)

            view = kit.RequestView(request.method, request.path, headers)
            with kit.use_trace(trace):
                flow = kit.deliver(receiver, view, trace, time.monotonic())
                reply = await kit.drive(flow, read, handle, store_blocks=receiver.store_blocks)
            if reply is None:
                return answered[0]
            return Response(reply.status, reply.headers, reply.body)

        return endpoint
"""

from __future__ import annotations

import asyncio
import time

from hubsig._body import NextChunk, NextChunkSync, read_body, read_body_sync
from hubsig._check import DeliveryCheck
from hubsig._config import (
    SETTING_NAMES,
    RequestView,
    WebhookConfig,
    WebhookSettings,
    config_from,
    settings_from_mapping,
)
from hubsig._delivery import Delivery
from hubsig._delivery_of import ANSWERED, ENVIRON_KEY, STATE_KEY, delivery_of, register_key
from hubsig._drive import check_store, drive, drive_sync, run_to_completion
from hubsig._flow import Flow, Outcome, answered, deliver, succeeded
from hubsig._headers import Headers
from hubsig._log_text import hubsig_logger
from hubsig._paths import PathGuard, must_verify, relative_path
from hubsig._receiver import Receiver
from hubsig._replies import TRACE_HEADER, Reply, acknowledge, failure, json_reply
from hubsig._routes import ExemptRoutes, check_routes, find_router
from hubsig._telemetry import handler_failed
from hubsig._trace import TraceContext, use_trace
from hubsig.errors import ClientDisconnected, WebhookError

__all__ = [
    "ANSWERED",
    "ENVIRON_KEY",
    "SETTING_NAMES",
    "STATE_KEY",
    "TRACE_HEADER",
    "ClientDisconnected",
    "Delivery",
    "DeliveryCheck",
    "ExemptRoutes",
    "Flow",
    "Headers",
    "NextChunk",
    "NextChunkSync",
    "Outcome",
    "PathGuard",
    "Receiver",
    "Reply",
    "RequestView",
    "TraceContext",
    "WebhookConfig",
    "WebhookError",
    "WebhookSettings",
    "acknowledge",
    "answered",
    "check_routes",
    "check_store",
    "config_from",
    "deliver",
    "delivery_of",
    "drive",
    "drive_sync",
    "failure",
    "find_router",
    "handler_failed",
    "json_reply",
    "logger",
    "must_verify",
    "read_body",
    "read_body_sync",
    "register_key",
    "relative_path",
    "run_to_completion",
    "settings_from_mapping",
    "succeeded",
    "use_trace",
    "within",
]

logger = hubsig_logger("hubsig")
"""hubsig's logger: what an adapter logs goes here, its quoted values escaped."""


def within(deadline: float) -> asyncio.Timeout:
    """``asyncio.timeout_at`` for ``deadline``, a ``time.monotonic()`` instant such as
    ``DeliveryCheck.deadline``: ``async with`` it around reads of your own."""
    loop = asyncio.get_running_loop()
    return asyncio.timeout_at(loop.time() + deadline - time.monotonic())
