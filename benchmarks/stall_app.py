"""The receiver ``benchmarks.redis_stall`` runs twice: uvicorn (``async``) or gunicorn (``sync``).

A ``@webhook`` endpoint with a ``RedisStore`` or ``AsyncRedisStore``
(``HUBSIG_STALL_MODE``) on ``HUBSIG_STALL_REDIS``, a lease of
``HUBSIG_STALL_LEASE`` seconds, and a handler that takes
``HUBSIG_STALL_HANDLER`` seconds and then appends one line per event to
``HUBSIG_STALL_SINK``: its pid, whether it was redelivered, and its entity id.
hubsig's log goes to standard error, which the script keeps per process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

import hubsig
from hubsig._dedupe import DedupePolicy

SECRET = "stall-secret"
LEASE = float(os.environ.get("HUBSIG_STALL_LEASE", "2"))
HANDLER_SECONDS = float(os.environ.get("HUBSIG_STALL_HANDLER", "4"))
URL = os.environ.get("HUBSIG_STALL_REDIS", "redis://127.0.0.1:6379/0")
SINK = os.open(
    os.environ.get("HUBSIG_STALL_SINK", "stall-sink.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT
)

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")


def record(delivery: hubsig.Delivery) -> None:
    mark = "redelivered" if delivery.redelivered else "first"
    lines = "".join(f"{os.getpid()} {mark} {i}\n" for i in delivery.payload.entity_ids)
    os.write(SINK, lines.encode())


if os.environ.get("HUBSIG_STALL_MODE") == "async":
    from hubsig.stores.redis import AsyncRedisStore

    async def handle(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
        await asyncio.sleep(HANDLER_SECONDS)
        record(delivery)

    app = hubsig.webhook(
        secret=SECRET, store=AsyncRedisStore(URL), dedupe=DedupePolicy(lease=LEASE)
    )(handle)
else:
    from hubsig.stores.redis import RedisStore

    def handle_sync(payload: hubsig.EventsPayload, delivery: hubsig.Delivery) -> None:
        time.sleep(HANDLER_SECONDS)
        record(delivery)

    app = hubsig.webhook(secret=SECRET, store=RedisStore(URL), dedupe=DedupePolicy(lease=LEASE))(
        handle_sync
    )
    wsgi = app.wsgi
