"""Every store holds every key: a delivery no store could hold is answered once and for all.

PostgreSQL text cannot hold NUL and its index refuses rows of a few
kilobytes; before keys were made holdable, such a delivery was answered 500
on every retry, so the sender retried it forever. Each case goes through a
real adapter and a real store (Redis and PostgreSQL servers on loopback).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubsig
from hubsig import EventsPayload
from hubsig._dedupe import DIGEST_PREFIX, MAX_KEY_LENGTH, event_keys, holdable_key, holdable_keys
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.testing import make_event, make_events
from tests.conftest import fresh_prefix, fresh_table
from tests.harness import Sent, call_asgi, call_wsgi

SECRET = "store-keys-secret"


def _long_id() -> str:
    """About 9,000 characters that do not compress (PostgreSQL compresses a repeated one)."""
    return "".join(random.choices(string.ascii_letters + string.digits, k=9000))


# The deliveries no store could hold before, each of which must be acknowledged once.
UNHOLDABLE: dict[str, Callable[[], EventsPayload]] = {
    "NUL in the entity id": lambda: make_events(events=[make_event(id="order\x00-1")]),
    "NUL in the event": lambda: make_events(events=[make_event("STAR\x00TED")]),
    "NUL in the operation id": lambda: make_events(
        events=[make_event(entity=hubsig.Entity())], operation_id="op\x00eration"
    ),
    "a 9,000-character entity id": lambda: make_events(events=[make_event(id=_long_id())]),
    "one of each, with an ordinary event": lambda: make_events(
        events=[
            make_event(id="order\x00-2"),
            make_event(id=_long_id()),
            make_event(),
        ]
    ),
}

SYNC_STORES = ["memory", "sqlite", "redis", "postgres"]
ASYNC_STORES = ["async redis", "async postgres"]


@pytest.fixture(params=SYNC_STORES + ASYNC_STORES)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    kind: str = request.param
    if kind == "memory":
        yield kind, MemoryStore()
    elif kind == "sqlite":
        sqlite = SQLiteStore(tmp_path / "events.db")
        yield kind, sqlite
        sqlite.close()
    elif kind.endswith("redis"):
        from hubsig.stores.redis import AsyncRedisStore, RedisStore

        url = request.getfixturevalue("redis_url")
        if kind == "async redis":
            yield kind, AsyncRedisStore(url, fresh_prefix())  # closed on its event loop
        else:
            redis_store = RedisStore(url, fresh_prefix())
            yield kind, redis_store
            redis_store.close()
    else:
        from hubsig.stores.postgres import AsyncPostgresStore, PostgresStore

        url = request.getfixturevalue("postgres_url")
        if kind == "async postgres":
            yield kind, AsyncPostgresStore(url, table=fresh_table())
        else:
            postgres = PostgresStore(url, table=fresh_table())
            yield kind, postgres
            postgres.close()


def _send(kind: str, endpoint: hubsig.WebhookEndpoint, payload: EventsPayload) -> list[int]:
    """Send ``payload`` twice (ASGI for the async stores, WSGI for the others); the statuses."""
    body = payload.to_json()
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})
    if not kind.startswith("async"):
        return [call_wsgi(endpoint.wsgi, sent)[0] for _ in range(2)]

    async def twice() -> list[int]:
        statuses = [(await call_asgi(endpoint, sent))[0] for _ in range(2)]
        await endpoint.config.store.close()  # type: ignore[union-attr]
        return statuses

    return asyncio.run(twice())


@pytest.mark.parametrize("case", UNHOLDABLE)
def test_a_delivery_no_store_could_hold_is_acknowledged_once_and_its_duplicate_skipped(
    any_store: tuple[str, Any], case: str
) -> None:
    kind, store = any_store
    handled: list[tuple[str | None, ...]] = []
    endpoint = hubsig.webhook(secret=SECRET, store=store)(
        lambda payload: handled.append(tuple(entity.id for _, entity in payload.events if entity))
    )
    payload = UNHOLDABLE[case]()
    assert _send(kind, endpoint, payload) == [200, 200]
    assert len(handled) == 1  # the duplicate was acknowledged without the handler


def test_ordinary_keys_keep_their_format() -> None:
    payload = make_events(events=[make_event(id="8e09"), make_event("FINISHED", id="8e09")])
    assert event_keys(payload, payload.to_json()) == ["STARTED:8e09", "FINISHED:8e09"]


def test_unholdable_keys_become_a_digest_of_their_utf8_bytes() -> None:
    key = "STARTED:order\x00-1"
    assert holdable_key(key) == DIGEST_PREFIX + hashlib.sha256(key.encode()).hexdigest()
    long_key = "STARTED:" + "é" * MAX_KEY_LENGTH
    assert holdable_key(long_key) == DIGEST_PREFIX + hashlib.sha256(long_key.encode()).hexdigest()
    surrogate = "STARTED:\ud800"
    assert holdable_key(surrogate).startswith(DIGEST_PREFIX)
    assert holdable_key("STARTED:" + "x" * (MAX_KEY_LENGTH - 8)) == "STARTED:" + "x" * 248


@settings(max_examples=60)
@given(st.text(max_size=MAX_KEY_LENGTH + 40))
def test_every_key_is_holdable_and_only_a_digest_starts_with_its_prefix(key: str) -> None:
    held = holdable_key(key)
    assert len(held) <= MAX_KEY_LENGTH
    assert "\x00" not in held
    held.encode("utf-8")  # no lone surrogate
    if held != key:
        assert held.startswith(DIGEST_PREFIX)
        assert len(held) == len(DIGEST_PREFIX) + 64
    else:
        assert not key.startswith(DIGEST_PREFIX)


def test_a_key_that_looks_like_a_digest_is_digested_too() -> None:
    """So an ordinary event can never take the key of a digested one."""
    digested = holdable_key("STARTED:" + "x" * 1000)
    assert holdable_key(digested) != digested
    assert holdable_key(digested).startswith(DIGEST_PREFIX)


@given(st.lists(st.text(max_size=300) | st.sampled_from(["sha256:x", "a\x00b", "STARTED:id"])))
def test_the_fast_check_of_many_keys_agrees_with_the_rule_for_each(keys: list[str]) -> None:
    assert holdable_keys(list(keys)) == [holdable_key(key) for key in keys]
