"""The async Redis store's connection pool stays healthy through outages and bursts.

A real redis-server is stopped and started again under concurrent
deliveries. Before, a pipeline that failed while loading its scripts kept
its connection out of the pool, so every outage leaked connections until
the pool was exhausted for good (``MaxConnectionsError`` 500s after Redis
was back, and "Unclosed Pipeline client" warnings); and a burst of more
deliveries than the pool has connections failed at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig.testing import make_events
from tests.harness import Sent, call_asgi
from tests.redis_server import RedisServer, can_start

pytestmark = pytest.mark.skipif(not can_start(), reason="needs redis-server to stop and restart it")
pytest.importorskip("redis")

SECRET = "outage-secret"
POOL = 4
BURST = 6 * POOL


async def _burst(endpoint: Any, statuses: Counter[int | None]) -> None:
    async def one() -> None:
        body = make_events(2).to_json()
        sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})
        statuses[(await call_asgi(endpoint, sent))[0]] += 1

    await asyncio.gather(*(one() for _ in range(BURST)))


def test_outages_leak_no_connection_and_every_delivery_succeeds_once_redis_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hubsig.stores.redis import AsyncRedisStore

    server = RedisServer(tmp_path)
    server.start()
    loop_complaints: list[str] = []
    before, during, after = Counter[int | None](), Counter[int | None](), Counter[int | None]()

    async def scenario() -> int:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: loop_complaints.append(str(context.get("message")))
        )
        store = AsyncRedisStore(f"{server.url}?max_connections={POOL}")
        endpoint = hubsig.webhook(secret=SECRET, store=store)(lambda payload: None)
        await _burst(endpoint, before)
        for _ in range(3):
            await asyncio.to_thread(server.stop)
            await _burst(endpoint, during)
            await asyncio.to_thread(server.start)
        await _burst(endpoint, after)
        in_use = len(store._redis.connection_pool._in_use_connections)
        await store.close()
        gc.collect()  # an unclosed pipeline complains when it is collected
        return in_use

    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR):
            warnings.simplefilter("always")
            in_use = asyncio.run(scenario())
            gc.collect()
    finally:
        server.stop()
    assert before == {200: BURST}
    assert during == {500: 3 * BURST}  # StoreUnavailable: the sender retries
    assert after == {200: BURST}  # the pool is whole again
    assert in_use == 0
    assert loop_complaints == []
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
    assert "MaxConnectionsError" not in caplog.text


def test_a_burst_larger_than_the_pool_waits_for_connections_instead_of_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hubsig.stores.redis import AsyncRedisStore, RedisStore

    server = RedisServer(tmp_path)
    server.start()
    statuses = Counter[int | None]()

    async def scenario() -> None:
        store = AsyncRedisStore(f"{server.url}?max_connections={POOL}")
        endpoint = hubsig.webhook(secret=SECRET, store=store)(lambda payload: None)
        await _burst(endpoint, statuses)
        await store.close()

    try:
        with caplog.at_level(logging.ERROR):
            asyncio.run(scenario())
        sync = RedisStore(f"{server.url}?max_connections=1")
        assert type(sync._redis.connection_pool).__name__ == "BlockingConnectionPool"
        sync.close()
    finally:
        server.stop()
    assert statuses == {200: BURST}
    assert "MaxConnectionsError" not in caplog.text
