"""The PostgreSQL receiver ``benchmarks.crashes`` kills: ``uvicorn benchmarks.crash_app:app``.

A ``@webhook`` endpoint with a ``PostgresStore``; its handler writes one row
per event into ``<table>_sink`` in the transaction the store lends it, so
the rows commit with the events' completion. Configured by environment:
``HUBSIG_CRASH_POSTGRES`` (URL), ``HUBSIG_CRASH_TABLE``, ``HUBSIG_CRASH_LEASE``.
"""

from __future__ import annotations

import os

import hubsig
from hubsig.stores.postgres import PostgresStore

SECRET = "crash-secret"
TABLE = os.environ.get("HUBSIG_CRASH_TABLE", "hubsig_crash")
store = PostgresStore(os.environ.get("HUBSIG_CRASH_POSTGRES", ""), table=TABLE)
lease = float(os.environ.get("HUBSIG_CRASH_LEASE", "2"))


@hubsig.webhook(secret=SECRET, store=store, dedupe=hubsig.DedupePolicy(lease=lease))
def app(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
    """Record each event, with whether it came back after a crash."""
    db = store.transaction(delivery)
    with db.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {TABLE}_sink (id, redelivered) VALUES (%s, %s)",  # noqa: S608
            [(entity_id, delivery.redelivered) for entity_id in payload.entity_ids],
        )
