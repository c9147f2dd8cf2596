"""A Litestar receiver: the middleware registered the Litestar way, with ``DefineMiddleware``.

Run: HUBSIG_SECRET=... uvicorn examples.litestar_app:app
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar, Request, post
from litestar.middleware import DefineMiddleware

import hubsig
from hubsig.asgi import HubSignatureMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()


@post("/webhooks/interactions", status_code=200)
async def interactions(request: Request[Any, Any, Any]) -> dict[str, object]:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return hubsig.events_response(ids).to_dict()


app = Litestar(
    route_handlers=[interactions],
    middleware=[DefineMiddleware(HubSignatureMiddleware, config=config)],
    logging_config=None,  # keep the logging configured above (Litestar's own would replace it)
)
