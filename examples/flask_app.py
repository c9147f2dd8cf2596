"""A Flask receiver: the hubsig extension, configured from ``app.config``, and a guarded view.

Run: HUBSIG_SECRET=... gunicorn examples.flask_app:app
"""

from __future__ import annotations

import os

from flask import Flask, request

import hubsig
from hubsig.flask import HubSig
from hubsig.stores import MemoryStore

app = Flask(__name__)
app.config["HUBSIG_SECRET"] = os.environ.get("HUBSIG_SECRET")
app.config["HUBSIG_SCHEME"] = os.environ.get("HUBSIG_SCHEME", "genesys-multicloud")
app.config["HUBSIG_STORE"] = MemoryStore()  # one process: see the README
webhooks = HubSig(app)  # checks the settings now: a mistake stops the app from starting


@app.post("/webhooks/interactions")
@webhooks.webhook_view()
def interactions() -> dict[str, object]:
    delivery = hubsig.delivery_of(request)
    assert request.get_data() == delivery.body  # the body reads as if nothing stood between
    return hubsig.events_response(delivery.payload.entity_ids).to_dict()
