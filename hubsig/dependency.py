"""A FastAPI dependency that verifies one route's deliveries, for apps that guard a single route.

``delivery: Annotated[Delivery, Depends(VerifiedDelivery(secret=...))]``
gives the route the verified delivery; the raw body is ``delivery.body``,
and ``hubsig.delivery_of(request)`` finds it too. A refused delivery raises
``DeliveryRejected``, an ``HTTPException`` with the refusal's status and the
trace id header, so FastAPI answers it even with no handler installed;
``app.add_exception_handler(DeliveryRejected, rejected_response)`` makes the
body the seed's ``EventsResponse`` shape, as the middleware sends. Needs
Starlette (``pip install 'hubsig[fastapi]'``).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from hubsig._access import ANSWERED, STATE_KEY
from hubsig._asgi_io import request_view, within
from hubsig._config import WebhookConfig, WebhookSettings, config_from
from hubsig._flow import ClientDisconnected, Outcome, Receiver, deliver, drive
from hubsig._headers import Headers
from hubsig._receiver import TRACE_HEADER, Delivery, DeliveryCheck, Reply
from hubsig._response import parse_events_response
from hubsig._trace import TraceContext
from hubsig.errors import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DeliveryRejected", "VerifiedDelivery", "rejected_response"]

ADAPTER = "hubsig.dependency.VerifiedDelivery"


class DeliveryRejected(HTTPException):
    """A refused delivery; ``reply`` is the full ``EventsResponse`` answer."""

    def __init__(self, reply: Reply, trace: TraceContext) -> None:
        message = parse_events_response(reply.body).message
        super().__init__(reply.status, message, {TRACE_HEADER: trace.trace_id})
        self.reply = reply


class VerifiedDelivery:
    """Verify the request and return its ``Delivery``; takes the middleware's settings
    except ``store`` and ``paths``, which cannot apply to one route's dependency."""

    def __init__(
        self, *, config: WebhookConfig | None = None, **settings: Unpack[WebhookSettings]
    ) -> None:
        self.config = config_from(config, settings, ADAPTER)
        for name in ("store", "paths"):
            if getattr(self.config, name) is not None:
                raise ConfigurationError(
                    f"{ADAPTER}: {name}= cannot apply to one route's dependency; use the "
                    "middleware or @hubsig.webhook"
                )
        self._receiver = Receiver.of(self.config)

    async def __call__(self, request: Request, response: Response) -> Delivery:
        headers = Headers(request.scope["headers"])
        trace = TraceContext.from_headers(headers)
        response.headers[TRACE_HEADER] = trace.trace_id  # FastAPI merges it into the answer
        verified: list[Delivery] = []

        async def keep(delivery: Delivery) -> Outcome:
            verified.append(delivery)
            return Outcome(True)

        flow = deliver(self._receiver, request_view(request.scope, headers), trace)
        reply = await drive(flow, lambda check: _read(check, request), keep, store_blocks=False)
        if reply is not None:
            raise DeliveryRejected(reply, trace)
        # Where delivery_of(request) finds it, as after the middleware, until the response
        # and its background tasks are done: a server may keep the scope longer (uvicorn
        # until the connection's next request), and with it the delivery and its body.
        state = request.scope["state"] = {**request.scope.get("state", {}), STATE_KEY: verified[0]}
        stack = request.scope.get("fastapi_inner_astack")  # the request's own exit stack
        if isinstance(stack, AsyncExitStack):
            stack.callback(state.__setitem__, STATE_KEY, ANSWERED)
        return verified[0]


async def _read(check: DeliveryCheck, request: Request) -> bytes:
    chunks: list[bytes] = []
    try:
        with within(check.deadline):
            async for chunk in request.stream():
                check.feed(chunk)
                chunks.append(chunk)
    except TimeoutError:
        raise check.timed_out() from None
    except ClientDisconnect:
        raise ClientDisconnected from None
    return b"".join(chunks)


async def rejected_response(request: Request, error: Exception) -> Response:
    """Exception handler that answers ``DeliveryRejected`` with its ``EventsResponse`` body."""
    assert isinstance(error, DeliveryRejected)
    reply = error.reply
    return Response(reply.body, reply.status, headers=dict(reply.headers))
