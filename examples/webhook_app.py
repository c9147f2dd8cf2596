"""A whole endpoint from one function: ``@hubsig.webhook`` makes it an ASGI app, with a WSGI
app at ``.wsgi``; routes run once per matching event.

Run: HUBSIG_SECRET=... uvicorn examples.webhook_app:interactions
 or: HUBSIG_SECRET=... gunicorn examples.webhook_app:application
"""

from __future__ import annotations

import logging
import os

import hubsig

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")


@hubsig.webhook(secret=os.environ["HUBSIG_SECRET"], scheme=hubsig.GENESYS_MULTICLOUD)
async def interactions(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
    # verified, parsed, and not processed before; returning None acknowledges every id
    ids = payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)


@interactions.on("STARTED", media_type="chat")
def chat_started(event: hubsig.Event, delivery: hubsig.Delivery) -> None:
    log.info("chat started %s", event.entity.id if event.entity else None)


application = interactions.wsgi  # the same endpoint for a WSGI server
