"""An aiohttp receiver: hubsig's aiohttp middleware guards the webhook's path.

Run: HUBSIG_SECRET=... python -m examples.aiohttp_app --port 8000
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

import hubsig
from hubsig.aiohttp import hubsig_middleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()


async def interactions(request: web.Request) -> web.Response:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    assert await request.read() == delivery.body  # the body reads as usual
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return web.json_response(hubsig.events_response(ids).to_dict())


app = web.Application(middlewares=[hubsig_middleware(config=config)])
app.router.add_post("/webhooks/interactions", interactions)

if __name__ == "__main__":
    options = argparse.ArgumentParser()
    options.add_argument("--port", type=int, default=8000)
    web.run_app(app, host="127.0.0.1", port=options.parse_args().port, print=None)
