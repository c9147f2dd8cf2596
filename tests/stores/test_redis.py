"""The Redis store against a real redis-server: fencing between workers, the async store, an
outage mid-run, and the start-up checks (reachable, scripting allowed, no eviction). Leases
under stalls: test_redis_leases.py; outages and the pool: test_redis_outages.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

import hubsig
from hubsig import EventsPayload
from hubsig._dedupe import Claim
from hubsig.errors import ConfigurationError
from hubsig.testing import make_events, signed_request
from tests.conftest import fresh_prefix
from tests.harness import Sent, call_wsgi
from tests.redis_server import RedisServer, can_start
from tests.stores import SECRET


def test_redis_worker_cannot_release_or_complete_another_workers_claim(redis_url: str) -> None:
    from hubsig.stores.redis import RedisStore

    prefix = fresh_prefix()
    first, second = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    assert first.claim(["k"], 60, "first") == [Claim.CLAIMED]
    second.release(["k"], "second")
    assert second.claim(["k"], 60, "second") == [Claim.BUSY]
    second.complete(["k"], 3600, "second")  # not its claim: no effect
    first.release(["k"], "first")
    assert second.claim(["k"], 60, "second") == [Claim.CLAIMED]
    first.close()
    second.close()


def test_async_redis_store(redis_url: str) -> None:
    from hubsig.stores.redis import AsyncRedisStore

    async def scenario() -> list[list[Claim]]:
        store = AsyncRedisStore(redis_url, prefix=fresh_prefix())
        first = await store.claim(["a"], 60, "A")
        second = await store.claim(["a"], 60, "A")
        await store.complete(["a"], 3600, "A")
        third = await store.claim(["a"], 60, "A")
        await store.close()
        return [first, second, third]

    assert asyncio.run(scenario()) == [[Claim.CLAIMED], [Claim.BUSY], [Claim.DONE]]


@pytest.mark.skipif(not can_start(), reason="needs redis-server to stop and restart it")
def test_redis_stopped_mid_run_answers_500_and_recovers(tmp_path: Path) -> None:
    from hubsig.stores.redis import RedisStore

    server = RedisServer(tmp_path)
    server.start()
    processed: list[str] = []
    store = RedisStore(server.url, prefix=fresh_prefix())
    endpoint = hubsig.webhook(secret=SECRET, store=store)(
        lambda payload: processed.extend(payload.entity_ids)
    )

    def post(payload: EventsPayload) -> int | None:
        request = signed_request(payload, SECRET)
        return call_wsgi(endpoint.wsgi, Sent([request.body], dict(request.headers)))[0]

    try:
        before, during, after = make_events(), make_events(), make_events()
        assert post(before) == 200
        server.stop()
        assert post(during) == 500  # the sender will retry
        server.start()  # Redis is back (empty: it kept nothing on disk)
        assert post(during) == 200  # the retry
        assert post(after) == 200
        assert post(during) == 200  # a duplicate after recovery: acknowledged, not re-run
    finally:
        store.close()
        server.stop()
    assert processed == [*before.entity_ids, *during.entity_ids, *after.entity_ids]


def test_an_unreachable_redis_fails_start_up() -> None:
    from hubsig.stores.redis import RedisStore

    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        hubsig.webhook(secret=SECRET, store=store)(lambda payload: None)


def test_a_redis_user_without_scripting_fails_start_up(redis_url: str) -> None:
    import redis

    admin = redis.Redis.from_url(redis_url)
    user = f"noscripts{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(
        user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    try:
        from hubsig.stores.redis import RedisStore

        where = admin.connection_pool.connection_kwargs
        host, port = where["host"], where["port"]
        store = RedisStore(redis.Redis(host=host, port=port, username=user, password="pw"))
        with pytest.raises(ConfigurationError, match="ACL") as refused:
            hubsig.wsgi.HubSignatureMiddleware(lambda *a: [], secret=SECRET, store=store)
        assert "pw" not in str(refused.value)
        store.close()
    finally:
        admin.acl_deluser(user)
        admin.close()


def test_a_redis_that_may_evict_its_keys_fails_start_up(tmp_path: Path) -> None:
    from tests.redis_server import RedisServer, can_start

    if not can_start():
        pytest.skip("needs redis-server to start one with an eviction policy")
    from hubsig.stores.redis import RedisStore

    server = RedisServer(tmp_path, ("--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru"))
    server.start()
    try:
        store = RedisStore(server.url)
        with pytest.raises(ConfigurationError, match="evict"):
            store.check()
        store.close()
    finally:
        server.stop()
