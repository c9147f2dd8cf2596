"""A FastAPI dependency that verifies one route's deliveries, for apps that guard a single route.

``delivery: Delivery = Depends(VerifiedDelivery(secret=...))`` gives the
route the verified delivery; the raw body is ``delivery.body``. A refused
delivery raises ``DeliveryRejected``, an ``HTTPException`` with the error's
status and the trace id header, so FastAPI answers it even with no handler
installed; ``app.add_exception_handler(DeliveryRejected, rejected_response)``
makes the body the seed's ``EventsResponse`` shape, as the middleware sends.
Needs Starlette (``pip install 'hubsig[fastapi]'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from hubsig.access import STATE_KEY
from hubsig.asgi_io import request_view, within
from hubsig.config import WebhookConfig, WebhookSettings, config_from
from hubsig.errors import ConfigurationError, WebhookError
from hubsig.headers import Headers
from hubsig.receiver import TRACE_HEADER, Delivery, DeliveryCheck, Reply, rejection
from hubsig.trace import TraceContext

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DeliveryRejected", "VerifiedDelivery", "rejected_response"]


class DeliveryRejected(HTTPException):
    """A refused delivery; ``reply`` is the full ``EventsResponse`` answer."""

    def __init__(self, reply: Reply, error: WebhookError, trace: TraceContext) -> None:
        headers = {TRACE_HEADER: trace.trace_id}
        super().__init__(reply.status, f"{error.code}: {error.message}", headers)
        self.reply = reply


class VerifiedDelivery:
    """Verify the request and return its ``Delivery``; takes the middleware's settings."""

    def __init__(
        self, *, config: WebhookConfig | None = None, **settings: Unpack[WebhookSettings]
    ) -> None:
        adapter = "hubsig.dependency.VerifiedDelivery"
        self.config = config_from(config, settings, adapter)
        for name in ("store", "paths"):
            if getattr(self.config, name) is not None:
                raise ConfigurationError(
                    f"{adapter}: {name}= cannot apply to one route's dependency; use the "
                    "middleware or @hubsig.webhook"
                )

    async def __call__(self, request: Request, response: Response) -> Delivery:
        headers = Headers(request.scope["headers"])
        trace = TraceContext.from_headers(headers)
        response.headers[TRACE_HEADER] = trace.trace_id  # FastAPI merges it into the answer
        check: DeliveryCheck | None = None
        try:
            check = DeliveryCheck(self.config, request_view(request.scope, headers), trace)
            await check.start()
            chunks: list[bytes] = []
            try:
                async with within(check.deadline):
                    async for chunk in request.stream():
                        check.feed(chunk)
                        chunks.append(chunk)
            except TimeoutError:
                raise check.timed_out() from None
            delivery = check.finish(b"".join(chunks))
        except WebhookError as error:
            raise DeliveryRejected(rejection(error, trace, self.config), error, trace) from None
        finally:
            if check is not None:
                check.release()
        # Where delivery_of(request) finds it, as after the middleware.
        request.scope["state"] = {**request.scope.get("state", {}), STATE_KEY: delivery}
        return delivery


async def rejected_response(request: Request, error: Exception) -> Response:
    """Exception handler that answers ``DeliveryRejected`` with its ``EventsResponse`` body."""
    assert isinstance(error, DeliveryRejected)
    reply = error.reply
    return Response(reply.body, reply.status, headers=dict(reply.headers))
