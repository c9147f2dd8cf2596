"""A Starlette receiver mounted under ``/api``: the middleware on the sub-app guards all of it.

Run: HUBSIG_SECRET=... uvicorn examples.starlette_app:app  (POST /api/webhooks/interactions)
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import hubsig
from hubsig.asgi import HubSignatureMiddleware

config = hubsig.WebhookConfig.from_env()


async def interactions(request: Request) -> JSONResponse:
    delivery = hubsig.delivery_of(request)
    return JSONResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())


webhooks = Starlette(
    routes=[Route("/webhooks/interactions", interactions, methods=["POST"])],
    middleware=[Middleware(HubSignatureMiddleware, config=config)],
)
app = Starlette(routes=[Mount("/api", app=webhooks)])
