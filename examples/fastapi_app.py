"""A FastAPI receiver: the middleware guards every request but the API docs, the route reads
its delivery.

Run: HUBSIG_SECRET=... uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

from fastapi import FastAPI, Request

import hubsig
from hubsig.asgi import HubSignatureMiddleware

# Built at import time: a missing secret or a bad setting stops the server before it serves.
config = hubsig.WebhookConfig.from_env(exempt=["/docs", "/openapi.json"])

app = FastAPI()
app.add_middleware(HubSignatureMiddleware, config=config)


@app.post("/webhooks/interactions")
async def interactions(request: Request) -> dict[str, object]:
    delivery = hubsig.delivery_of(request)
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()
