"""Scaling out with Celery: receivers send one task per verified event (its key as the task
id), Celery workers run it once per event, writing in SQLite in the store's transaction.

Receivers:
    HUBSIG_SECRET=... CELERY_BROKER=redis://127.0.0.1:6379/1 \
        uvicorn --factory examples.scaling_out_celery:receiver
    (or: hubsig serve --to 'celery+redis://127.0.0.1:6379/1?task=interactions')
Workers:
    CELERY_BROKER=redis://127.0.0.1:6379/1 WORKER_DB=worker.db \
        celery -A examples.scaling_out_celery worker

Importing the module defines the task, which opens the worker's store (WORKER_DB).
"""

from __future__ import annotations

import logging
import os
import sqlite3

from celery import Celery

import hubsig
from hubsig.sinks.celery import CelerySink
from hubsig.stores import SQLiteStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.celery import once_task

log = logging.getLogger("interactions")
app = Celery("interactions", broker=os.environ["CELERY_BROKER"], set_as_current=False)
# a task whose worker was killed comes back after this many seconds (Celery's default: 1 hour)
app.conf.broker_transport_options = {"visibility_timeout": 120}


def receiver() -> hubsig.WebhookEndpoint:
    """The receiving side: verified, claimed, one task per event; 200 once the broker has them."""
    config = hubsig.WebhookConfig(
        secret=os.environ["HUBSIG_SECRET"],
        scheme=hubsig.GENESYS_MULTICLOUD,
        store=SQLiteStore(os.environ.get("RECEIVER_DB", "receivers.db")),
        sink=CelerySink(app, "interactions"),
    )
    return hubsig.WebhookEndpoint(config=config)


def _worker_store() -> SQLiteStore:
    path = os.environ.get("WORKER_DB", "worker.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS interactions (id TEXT, event TEXT, trace TEXT)")
    return SQLiteStore(path)


@once_task(app, store=_worker_store(), name="interactions")
def interactions(event: ClaimedEvent) -> None:
    """Each event once: its row commits with its completion, or neither does."""
    entity = event.event.get("entity") or {}
    row = (entity.get("id"), event.event.get("event"), event.trace_id)
    event.transaction().execute("INSERT INTO interactions VALUES (?, ?, ?)", row)
    log.info("processed %s trace_id=%s", event.key, event.trace_id)
