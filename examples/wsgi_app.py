"""A plain WSGI receiver: any WSGI app behind hubsig's WSGI middleware, served by gunicorn or
by the standard library's ``wsgiref``.

Run: HUBSIG_SECRET=... gunicorn examples.wsgi_app:application
 or: HUBSIG_SECRET=... python -m examples.wsgi_app --port 8000
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from wsgiref.simple_server import make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import hubsig
from hubsig.wsgi import HubSignatureMiddleware

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# handler's own lines, each with its time and level.
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("interactions")

config = hubsig.WebhookConfig.from_env()


def interactions(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The app behind the middleware: every request that reaches it was verified."""
    delivery = hubsig.delivery_of(environ)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    body = hubsig.events_response(ids).to_json()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


application = HubSignatureMiddleware(interactions, config=config)

if __name__ == "__main__":
    options = argparse.ArgumentParser()
    options.add_argument("--port", type=int, default=8000)
    with make_server("127.0.0.1", options.parse_args().port, application) as server:
        server.serve_forever()
