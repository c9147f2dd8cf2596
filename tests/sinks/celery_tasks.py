"""The Celery app a real worker process runs in the Celery sink tests.

``HUBSIG_TEST_BROKER`` names the broker and ``HUBSIG_TEST_DB`` the SQLite file the
tasks record in (``processed``), in the store's transaction.
"""

from __future__ import annotations

import os
import sqlite3

from celery import Celery

from hubsig._dedupe import DedupePolicy
from hubsig.stores import SQLiteStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.celery import once_task

app = Celery("hubsig-tests", broker=os.environ["HUBSIG_TEST_BROKER"], set_as_current=False)
app.conf.broker_transport_options = {"visibility_timeout": 5}
app.conf.worker_hijack_root_logger = False

PATH = os.environ["HUBSIG_TEST_DB"]
with sqlite3.connect(PATH) as db:
    db.execute("CREATE TABLE IF NOT EXISTS processed (key TEXT, trace TEXT, redelivered INT)")
    db.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT)")
store = SQLiteStore(PATH)
policy = DedupePolicy(lease=3)


def insert(event: ClaimedEvent) -> None:
    """Insert the event's key in the store's transaction: committed with its completion."""
    event.transaction().execute(
        "INSERT INTO processed VALUES (?, ?, ?)", (event.key, event.trace_id, event.redelivered)
    )


record = once_task(app, store=store, name="record", policy=policy, retry_delay=0.1)(insert)


@once_task(app, store=store, name="flaky", policy=policy, retry_delay=0.1)
def flaky(event: ClaimedEvent) -> None:
    """Fail an event's first attempt (recorded outside the transaction), then record it."""
    with sqlite3.connect(PATH) as attempts:
        tried = attempts.execute("SELECT 1 FROM attempts WHERE key = ?", (event.key,)).fetchone()
        attempts.execute("INSERT INTO attempts VALUES (?)", (event.key,))
    if tried is None:
        raise RuntimeError("the first attempt fails")
    insert(event)
