"""The receiver ``benchmarks.redis_outages`` runs twice: ``uvicorn benchmarks.outage_app:app``.

A ``@webhook`` endpoint sharing a ``RedisStore`` (``HUBSIG_OUTAGE_REDIS``) with
the other process; its handler appends one line per event to
``HUBSIG_OUTAGE_SINK`` in a single ``O_APPEND`` write.
"""

from __future__ import annotations

import os

import hubsig
from hubsig.stores.redis import RedisStore

SECRET = "outage-secret"
store = RedisStore(os.environ.get("HUBSIG_OUTAGE_REDIS", "redis://127.0.0.1:6379/0"))
sink = os.open(
    os.environ.get("HUBSIG_OUTAGE_SINK", "sink.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT
)


@hubsig.webhook(secret=SECRET, store=store)
def app(payload: hubsig.EventsPayload) -> None:
    """Record each event's id."""
    os.write(sink, "".join(entity_id + "\n" for entity_id in payload.entity_ids).encode())
