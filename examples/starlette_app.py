"""A Starlette receiver mounted under ``/api``: the middleware on the sub-app guards all of it.

Run: HUBSIG_SECRET=... uvicorn examples.starlette_app:app  (POST /api/webhooks/interactions)
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import hubsig
from hubsig.asgi import HubSignatureMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()


async def interactions(request: Request) -> JSONResponse:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return JSONResponse(hubsig.events_response(ids).to_dict())


webhooks = Starlette(
    routes=[Route("/webhooks/interactions", interactions, methods=["POST"])],
    middleware=[Middleware(HubSignatureMiddleware, config=config)],
)
app = Starlette(routes=[Mount("/api", app=webhooks)])
