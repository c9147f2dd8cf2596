"""A Quart receiver: the ASGI middleware around ``app.asgi_app``, the view reads its delivery.

Run: HUBSIG_SECRET=... hypercorn examples.quart_app:app
"""

from __future__ import annotations

from quart import Quart, request

import hubsig
from hubsig.asgi import HubSignatureMiddleware

config = hubsig.WebhookConfig.from_env()

app = Quart(__name__)
app.asgi_app = HubSignatureMiddleware(app.asgi_app, config=config)  # type: ignore[method-assign]


@app.post("/webhooks/interactions")
async def interactions() -> dict[str, object]:
    delivery = hubsig.delivery_of(request)
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()
