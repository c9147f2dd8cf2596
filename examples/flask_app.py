"""A Flask receiver: the hubsig extension, configured from ``app.config``, and a guarded view.

Run: HUBSIG_SECRET=... gunicorn examples.flask_app:app
"""

from __future__ import annotations

import logging
import os

from flask import Flask, request

import hubsig
from hubsig.flask import HubSig

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

app = Flask(__name__)
app.config["HUBSIG_SECRET"] = os.environ.get("HUBSIG_SECRET")
app.config["HUBSIG_SCHEME"] = os.environ.get("HUBSIG_SCHEME", "genesys-multicloud")
webhooks = HubSig(app)  # checks the settings now: a mistake stops the app from starting


@app.post("/webhooks/interactions")
@webhooks.webhook_view()
def interactions() -> dict[str, object]:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    assert request.get_data() == delivery.body  # the body reads as if nothing stood between
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return hubsig.events_response(ids).to_dict()
