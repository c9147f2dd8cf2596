"""A Falcon receiver, WSGI and ASGI: hubsig's middleware wraps each Falcon app.

Run: HUBSIG_SECRET=... gunicorn examples.falcon_app:application
 or: HUBSIG_SECRET=... uvicorn examples.falcon_app:asgi_application
"""

from __future__ import annotations

import falcon
import falcon.asgi

import hubsig
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware

config = hubsig.WebhookConfig.from_env()


class Interactions:
    def on_post(self, request: falcon.Request, response: falcon.Response) -> None:
        delivery = hubsig.delivery_of(request)
        response.media = hubsig.events_response(delivery.payload.entity_ids).to_dict()


class AsyncInteractions:
    async def on_post(self, request: falcon.asgi.Request, response: falcon.asgi.Response) -> None:
        delivery = hubsig.delivery_of(request)
        response.media = hubsig.events_response(delivery.payload.entity_ids).to_dict()


wsgi_app = falcon.App()
wsgi_app.add_route("/webhooks/interactions", Interactions())
application = WSGIMiddleware(wsgi_app, config=config)

asgi_app = falcon.asgi.App()
asgi_app.add_route("/webhooks/interactions", AsyncInteractions())
asgi_application = ASGIMiddleware(asgi_app, config=config)
