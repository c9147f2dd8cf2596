"""Scaling out with Redis Streams: receivers publish each verified event to a stream, a
consumer group of workers processes each once, writing in SQLite in the store's transaction.

Receivers (as many as you like; they share the Redis store):
    HUBSIG_SECRET=... REDIS_URL=redis://127.0.0.1:6379/0 \
        uvicorn --factory examples.scaling_out_redis:receiver --workers 2
Workers (as many as you like; each its own consumer of the group):
    REDIS_URL=redis://127.0.0.1:6379/0 WORKER_DB=worker.db python -m examples.scaling_out_redis

Redis must persist (appendonly yes, appendfsync always): the sink checks it at start-up.
"""

from __future__ import annotations

import logging
import os
import sqlite3

import hubsig
from hubsig.sinks.redis_streams import RedisStreamSink
from hubsig.stores import SQLiteStore
from hubsig.stores.redis import RedisStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.redis_streams import RedisStreamWorker

STREAM = "interactions"
log = logging.getLogger("interactions")


def receiver() -> hubsig.WebhookEndpoint:
    """The receiving side: verified, claimed in Redis, published; 200 once Redis has them."""
    url = os.environ["REDIS_URL"]
    config = hubsig.WebhookConfig(
        secret=os.environ["HUBSIG_SECRET"],
        scheme=hubsig.GENESYS_MULTICLOUD,
        store=RedisStore(url, prefix="receivers:"),  # shared by every receiver
        sink=RedisStreamSink(url, STREAM),
    )
    return hubsig.WebhookEndpoint(config=config)


def worker() -> RedisStreamWorker:
    """The working side: each event once, its row committed with its completion."""
    path = os.environ.get("WORKER_DB", "worker.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS interactions (id TEXT, event TEXT, trace TEXT)")

    def record(event: ClaimedEvent) -> None:
        entity = event.event.get("entity") or {}
        row = (entity.get("id"), event.event.get("event"), event.trace_id)
        event.transaction().execute("INSERT INTO interactions VALUES (?, ?, ?)", row)
        log.info("processed %s trace_id=%s", event.key, event.trace_id)

    return RedisStreamWorker(
        os.environ["REDIS_URL"], STREAM, "workers", store=SQLiteStore(path), handler=record
    )


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    worker().run()
