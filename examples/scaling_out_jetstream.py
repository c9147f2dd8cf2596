"""Scaling out with NATS JetStream: receivers publish each verified event (its key as the
``Nats-Msg-Id``), a durable pull consumer shared by workers processes each once.

Receivers:
    HUBSIG_SECRET=... NATS_URL=nats://127.0.0.1:4222 RECEIVER_DB=receivers.db \
        uvicorn --factory examples.scaling_out_jetstream:receiver
Workers (as many as you like):
    NATS_URL=nats://127.0.0.1:4222 WORKER_DB=worker.db python -m examples.scaling_out_jetstream

The stream INTERACTIONS (subject INTERACTIONS.events, file storage) is made if missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3

import hubsig
from hubsig.sinks.jetstream import JetStreamSink
from hubsig.stores import SQLiteStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.jetstream import JetStreamWorker

STREAM = "INTERACTIONS"
log = logging.getLogger("interactions")


def receiver() -> hubsig.WebhookEndpoint:
    """The receiving side: verified, claimed, published; 200 once JetStream stored them."""
    config = hubsig.WebhookConfig(
        secret=os.environ["HUBSIG_SECRET"],
        scheme=hubsig.GENESYS_MULTICLOUD,
        store=SQLiteStore(os.environ.get("RECEIVER_DB", "receivers.db")),
        sink=JetStreamSink(os.environ["NATS_URL"], STREAM),
    )
    return hubsig.WebhookEndpoint(config=config)


def worker() -> JetStreamWorker:
    """The working side: each event once, its row committed with its completion."""
    path = os.environ.get("WORKER_DB", "worker.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS interactions (id TEXT, event TEXT, trace TEXT)")

    def record(event: ClaimedEvent) -> None:
        entity = event.event.get("entity") or {}
        row = (entity.get("id"), event.event.get("event"), event.trace_id)
        event.transaction().execute("INSERT INTO interactions VALUES (?, ?, ?)", row)
        log.info("processed %s trace_id=%s", event.key, event.trace_id)

    return JetStreamWorker(
        os.environ["NATS_URL"], STREAM, "workers", store=SQLiteStore(path), handler=record
    )


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(worker().run())
