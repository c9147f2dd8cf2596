"""The adapter kit: what it takes to put hubsig in front of a framework it does not know yet.

An adapter does I/O only. It builds a ``Receiver`` once from the settings,
and for each request on a guarded path it runs the delivery flow with
``drive`` (or ``drive_sync``), giving it two functions: one that reads the
body, feeding each chunk to the ``DeliveryCheck``, and one that runs the
app on the verified ``Delivery`` and says how it went (an ``Outcome``). The
flow returns the ``Reply`` to send, or ``None`` when the app has answered.
Verification, bounds, refusals and their logging, and claiming each event
once all happen in the flow; ``hubsig.aiohttp`` is written on this kit alone.

A complete adapter for a made-up framework whose handlers take a request
with ``.method``, ``.path``, ``.headers``, ``.chunks()`` and ``.state``, and
return a ``Response(status, headers, body)``::

    from hubsig import kit

    def guarded(handler, **settings):
        receiver = kit.Receiver.of(kit.config_from(None, settings, "guarded"))

        async def endpoint(request):
            headers = kit.Headers(request.headers)
            trace = kit.TraceContext.from_headers(headers)
            answered = []

            async def read(check):
                body = b""
                async with kit.within(check.deadline):
                    async for chunk in request.chunks():
                        check.feed(chunk)
                        body += chunk
                return body

            async def handle(delivery):
                request.state[kit.ENVIRON_KEY] = delivery  # for hubsig.delivery_of
                answered.append(await handler(request))
                return kit.answered(answered[0].status)

            view = kit.RequestView(request.method, request.path, headers)
            with kit.use_trace(trace):
                flow = kit.deliver(receiver, view, trace)
                reply = await kit.drive(flow, read, handle, store_blocks=receiver.store_blocks)
            if reply is None:
                return answered[0]
            return Response(reply.status, reply.headers, reply.body)

        return endpoint
"""

from __future__ import annotations

import asyncio
import time

from hubsig._config import RequestView, WebhookConfig, WebhookSettings, config_from
from hubsig._delivery_of import ENVIRON_KEY, STATE_KEY, delivery_of, register_key
from hubsig._drive import drive, drive_sync
from hubsig._flow import (
    ClientDisconnected,
    Flow,
    Outcome,
    Receiver,
    answered,
    deliver,
    succeeded,
)
from hubsig._headers import Headers
from hubsig._paths import PathGuard, relative_path
from hubsig._receiver import TRACE_HEADER, Delivery, DeliveryCheck, Reply, json_reply
from hubsig._routes import check_routes, find_router
from hubsig._trace import TraceContext, use_trace
from hubsig.errors import WebhookError

__all__ = [
    "ENVIRON_KEY",
    "STATE_KEY",
    "TRACE_HEADER",
    "ClientDisconnected",
    "Delivery",
    "DeliveryCheck",
    "Flow",
    "Headers",
    "Outcome",
    "PathGuard",
    "Receiver",
    "Reply",
    "RequestView",
    "TraceContext",
    "WebhookConfig",
    "WebhookError",
    "WebhookSettings",
    "answered",
    "check_routes",
    "config_from",
    "deliver",
    "delivery_of",
    "drive",
    "drive_sync",
    "find_router",
    "json_reply",
    "register_key",
    "relative_path",
    "succeeded",
    "use_trace",
    "within",
]


def within(deadline: float) -> asyncio.Timeout:
    """``asyncio.timeout_at`` for ``deadline``, a ``time.monotonic()`` instant such as
    ``DeliveryCheck.deadline``: ``async with`` it around the body's reads."""
    loop = asyncio.get_running_loop()
    return asyncio.timeout_at(loop.time() + deadline - time.monotonic())
