"""A Litestar receiver: the middleware registered the Litestar way, with ``DefineMiddleware``.

Run: HUBSIG_SECRET=... uvicorn examples.litestar_app:app
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, post
from litestar.middleware import DefineMiddleware

import hubsig
from hubsig.asgi import HubSignatureMiddleware

config = hubsig.WebhookConfig.from_env()


@post("/webhooks/interactions", status_code=200)
async def interactions(request: Request[Any, Any, Any]) -> dict[str, object]:
    delivery = hubsig.delivery_of(request)
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()


app = Litestar(
    route_handlers=[interactions],
    middleware=[DefineMiddleware(HubSignatureMiddleware, config=config)],
)
