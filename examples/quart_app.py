"""A Quart receiver: the ASGI middleware around ``app.asgi_app``, the view reads its delivery.

Run: HUBSIG_SECRET=... hypercorn examples.quart_app:app
"""

from __future__ import annotations

import logging

from quart import Quart, request

import hubsig
from hubsig.asgi import HubSignatureMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()

app = Quart(__name__)
app.asgi_app = HubSignatureMiddleware(app.asgi_app, config=config)  # type: ignore[method-assign]


@app.post("/webhooks/interactions")
async def interactions() -> dict[str, object]:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return hubsig.events_response(ids).to_dict()
