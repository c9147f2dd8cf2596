"""A Falcon receiver, WSGI and ASGI: hubsig's middleware wraps each Falcon app.

Run: HUBSIG_SECRET=... gunicorn examples.falcon_app:application
 or: HUBSIG_SECRET=... uvicorn examples.falcon_app:asgi_application
"""

from __future__ import annotations

import logging

import falcon
import falcon.asgi

import hubsig
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()


def handle(delivery: hubsig.Delivery) -> dict[str, object]:
    """What either app does with a verified delivery of events not processed before."""
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return hubsig.events_response(ids).to_dict()


class Interactions:
    def on_post(self, request: falcon.Request, response: falcon.Response) -> None:
        response.media = handle(hubsig.delivery_of(request))


class AsyncInteractions:
    async def on_post(self, request: falcon.asgi.Request, response: falcon.asgi.Response) -> None:
        response.media = handle(hubsig.delivery_of(request))


wsgi_app = falcon.App()
wsgi_app.add_route("/webhooks/interactions", Interactions())
application = WSGIMiddleware(wsgi_app, config=config)

asgi_app = falcon.asgi.App()
asgi_app.add_route("/webhooks/interactions", AsyncInteractions())
asgi_application = ASGIMiddleware(asgi_app, config=config)
