"""Deliveries no store could hold, through every store: ``python -m benchmarks.store_stress``.

Each case (NUL in an entity id, an event or an operation id; a 9,000-
character entity id) is signed and sent the way a sender does: until it is
answered 200 (at most ``TRIES`` times), then twice more as duplicates. It
goes through ``hubsig.webhook`` (WSGI for the sync stores, ASGI for the
async ones) to the memory, SQLite, Redis and PostgreSQL stores; Redis and
PostgreSQL are private servers on loopback (or ``HUBSIG_REDIS_URL`` and
``HUBSIG_POSTGRES_URL``), stopped at the end.

Prints one JSON object per store and case: the statuses in order and how
many times the handler ran. Every case must read ``[200, 200, 200]`` with
one run: answered once and for all, its duplicates acknowledged without the
handler. Before keys were made holdable, PostgreSQL answered 500 every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import string
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hubsig
from hubsig import EventsPayload
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.testing import make_event, make_events
from tests.adapters import Sent, _call_asgi, _call_wsgi

SECRET = "store-stress-secret"
TRIES = 5
"""A sender's tries before this script gives up on a case (it retries anything but 200)."""
DUPLICATES = 2

STORES = ["memory", "sqlite", "redis", "postgres", "async redis", "async postgres"]


def _long_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=9000))


CASES: dict[str, Callable[[], EventsPayload]] = {
    "NUL in the entity id": lambda: make_events(events=[make_event(id="order\x00-1")]),
    "NUL in the event": lambda: make_events(events=[make_event("STAR\x00TED")]),
    "NUL in the operation id": lambda: make_events(
        events=[make_event(entity=hubsig.Entity())], operation_id="op\x00eration"
    ),
    "9,000-character entity id": lambda: make_events(events=[make_event(id=_long_id())]),
}


@contextlib.contextmanager
def servers(folder: Path) -> Iterator[tuple[str, str]]:
    """Redis and PostgreSQL URLs: the environment's, else private servers for the run."""
    from tests.postgres_server import PostgresServer
    from tests.redis_server import RedisServer

    redis_url = os.environ.get("HUBSIG_REDIS_URL")
    postgres_url = os.environ.get("HUBSIG_POSTGRES_URL")
    redis_server = postgres_server = None
    try:
        if not redis_url:
            redis_server = RedisServer(folder)
            redis_server.start()
            redis_url = redis_server.url
        if not postgres_url:
            postgres_server = PostgresServer()
            postgres_server.start()
            postgres_url = postgres_server.url
        yield redis_url, postgres_url
    finally:
        if redis_server is not None:
            redis_server.stop()
        if postgres_server is not None:
            postgres_server.stop()
            postgres_server.remove()


def open_store(kind: str, folder: Path, redis_url: str, postgres_url: str) -> Any:
    prefix, table = f"hubsig-stress-{uuid.uuid4().hex}:", f"hubsig_stress_{uuid.uuid4().hex[:12]}"
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(folder / f"{uuid.uuid4().hex}.db")
    if kind.endswith("redis"):
        from hubsig.stores.redis import AsyncRedisStore, RedisStore

        return (AsyncRedisStore if kind.startswith("async") else RedisStore)(redis_url, prefix)
    from hubsig.stores.postgres import AsyncPostgresStore, PostgresStore

    postgres = AsyncPostgresStore if kind.startswith("async") else PostgresStore
    return postgres(postgres_url, table=table)


def send_like_a_sender(kind: str, endpoint: hubsig.WebhookEndpoint, body: bytes) -> list[int]:
    """Until 200 (at most ``TRIES``), then ``DUPLICATES`` more times; the statuses."""
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})

    async def call_asgi() -> int:
        return (await _call_asgi(endpoint, sent))[0] or 0

    def call() -> int:
        if kind.startswith("async"):
            return loop.run_until_complete(call_asgi())
        return _call_wsgi(endpoint.wsgi, sent)[0] or 0

    loop = asyncio.new_event_loop()
    try:
        statuses: list[int] = []
        while len(statuses) < TRIES and 200 not in statuses:
            statuses.append(call())
        if 200 in statuses:
            statuses += [call() for _ in range(DUPLICATES)]
        store = endpoint.config.store
        if kind.startswith("async"):
            loop.run_until_complete(store.close())  # type: ignore[union-attr]
        elif hasattr(store, "close"):
            store.close()  # type: ignore[union-attr]
        return statuses
    finally:
        loop.close()


def run() -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="hubsig-store-stress-") as name:
        folder = Path(name)
        with servers(folder) as (redis_url, postgres_url):
            for kind in STORES:
                for case, payload in CASES.items():
                    runs: list[EventsPayload] = []
                    store = open_store(kind, folder, redis_url, postgres_url)
                    endpoint = hubsig.webhook(secret=SECRET, store=store)(runs.append)
                    statuses = send_like_a_sender(kind, endpoint, payload().to_json())
                    once = statuses == [200] * (1 + DUPLICATES) and len(runs) == 1
                    results.append(
                        {
                            "store": kind,
                            "case": case,
                            "statuses": statuses,
                            "handler_runs": len(runs),
                            "answered_once_and_for_all": once,
                        }
                    )
    return results


def main() -> int:
    results = run()
    for result in results:
        print(json.dumps(result))
    failed = [result for result in results if not result["answered_once_and_for_all"]]
    print(
        json.dumps({"cases": len(results), "answered_once_and_for_all": len(results) - len(failed)})
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
