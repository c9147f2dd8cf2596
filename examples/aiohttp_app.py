"""An aiohttp receiver: hubsig's aiohttp middleware guards the webhook's path.

Run: HUBSIG_SECRET=... python -m examples.aiohttp_app --port 8000
"""

from __future__ import annotations

import argparse

from aiohttp import web

import hubsig
from hubsig.aiohttp import hubsig_middleware
from hubsig.stores import MemoryStore

config = hubsig.WebhookConfig.from_env(store=MemoryStore())


async def interactions(request: web.Request) -> web.Response:
    delivery = hubsig.delivery_of(request)
    assert await request.read() == delivery.body  # the body reads as usual
    return web.json_response(hubsig.events_response(delivery.payload.entity_ids).to_dict())


app = web.Application(middlewares=[hubsig_middleware(config=config)])
app.router.add_post("/webhooks/interactions", interactions)

if __name__ == "__main__":
    options = argparse.ArgumentParser()
    options.add_argument("--port", type=int, default=8000)
    web.run_app(app, host="127.0.0.1", port=options.parse_args().port, print=None)
