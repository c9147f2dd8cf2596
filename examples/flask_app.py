"""A Flask receiver: the WSGI middleware around the app, the view reads its delivery.

Run: HUBSIG_SECRET=... gunicorn examples.flask_app:app
"""

from __future__ import annotations

from flask import Flask, request

import hubsig
from hubsig.wsgi import HubSignatureMiddleware

config = hubsig.WebhookConfig.from_env(paths=["/webhooks/interactions"])

app = Flask(__name__)
app.wsgi_app = HubSignatureMiddleware(app.wsgi_app, config=config)  # type: ignore[method-assign]


@app.post("/webhooks/interactions")
def interactions() -> dict[str, object]:
    delivery = hubsig.delivery_of(request)
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()
