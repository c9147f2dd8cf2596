"""A FastAPI receiver: the middleware guards every request but the API docs, the route reads
its delivery.

Run: HUBSIG_SECRET=... uvicorn examples.fastapi_app:app
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request

import hubsig
from hubsig.asgi import HubSignatureMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

# Built at import time: a missing secret or a bad setting stops the server before it serves.
config = hubsig.WebhookConfig.from_env(exempt=["/docs", "/openapi.json"])

app = FastAPI()
app.add_middleware(HubSignatureMiddleware, config=config)


@app.post("/webhooks/interactions")
async def interactions(request: Request) -> dict[str, object]:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return hubsig.events_response(ids).to_dict()
