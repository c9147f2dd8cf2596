"""Each event processed once: the stores' contract, and how the endpoint and middlewares use it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubsig
from hubsig import EventsPayload, WebhookConfig
from hubsig._dedupe import Claim, DedupePolicy, StoreUnavailable, admission, event_keys, unique_keys
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.testing import make_event, make_events, signed_request
from tests.adapters import ADAPTERS, Sent, _call_asgi, _call_wsgi, asgi_middleware, wsgi_middleware
from tests.conftest import fresh_prefix
from tests.redis_server import RedisServer, can_start

SECRET = "dedupe-secret"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the stores' contract ---------------------------------------------------------------


def test_claim_complete_release(store: Any) -> None:
    assert store.claim(["a", "b"], 60, "A") == [Claim.CLAIMED, Claim.CLAIMED]
    assert store.claim(["a"], 60, "A") == [Claim.BUSY]
    store.complete(["a"], 3600, "A")
    store.release(["b"], "A")
    assert store.claim(["a", "b"], 60, "A") == [Claim.DONE, Claim.CLAIMED]
    store.release(["a"], "A")  # releasing a processed event changes nothing
    assert store.claim(["a"], 60, "A") == [Claim.DONE]


def test_only_one_of_many_concurrent_claims_wins(store: Any) -> None:
    results: list[Claim] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        (claim,) = store.claim(["contested"], 60, uuid.uuid4().hex)
        with lock:
            results.append(claim)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(Claim.CLAIMED) == 1
    assert results.count(Claim.BUSY) == 7


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_leases_and_retention_expire(kind: str, tmp_path: Path) -> None:
    clock = Clock()
    store: Any = (
        MemoryStore(clock=clock)
        if kind == "memory"
        else SQLiteStore(tmp_path / "e.db", clock=clock)
    )
    store.claim(["crashed"], 60, "A")
    clock.now += 59
    assert store.claim(["crashed"], 60, "A") == [Claim.BUSY]
    clock.now += 2  # the worker that claimed it died: its lease is over
    assert store.claim(["crashed"], 60, "A") == [Claim.RECLAIMED]
    store.complete(["crashed"], 3600, "A")
    clock.now += 3601
    assert store.claim(["crashed"], 60, "A") == [Claim.CLAIMED]


def test_redis_lease_expires(redis_url: str) -> None:
    from hubsig.stores.redis import RedisStore

    store = RedisStore(redis_url, prefix=fresh_prefix())
    assert store.claim(["crashed"], 0.1, "A") == [Claim.CLAIMED]
    assert store.claim(["crashed"], 0.1, "A") == [Claim.BUSY]
    import time

    time.sleep(0.25)
    assert store.claim(["crashed"], 60, "A") == [Claim.RECLAIMED]
    store.close()


def test_a_stale_worker_cannot_release_or_complete_a_claim_taken_since(store: Any) -> None:
    """Fenced claims: worker A's lease runs out, B claims the event; A's late release or
    completion must leave B's live claim alone, in every store."""
    assert store.claim(["k"], 0.05, "A") == [Claim.CLAIMED]
    time.sleep(0.1)  # A's lease ends while its handler is still busy
    assert store.claim(["k"], 60, "B") == [Claim.RECLAIMED]
    store.release(["k"], "A")  # A's handler failed: it gives back what it no longer holds
    assert store.claim(["k"], 60, "C") == [Claim.BUSY]  # B's claim stands
    store.complete(["k"], 3600, "A")  # or A succeeded late: B's claim still stands
    assert store.claim(["k"], 60, "C") == [Claim.BUSY]
    store.complete(["k"], 3600, "B")
    assert store.claim(["k"], 60, "C") == [Claim.DONE]


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


def test_memory_store_forgets_the_oldest_processed_events_but_never_a_live_claim() -> None:
    store = MemoryStore(max_entries=3)
    assert store.claim(["live"], 60, "A") == [Claim.CLAIMED]
    for key in ("a", "b", "c", "d"):
        store.claim([key], 60, "A")
        store.complete([key], 3600, "A")
    assert store.claim(["a"], 60, "A") == [Claim.CLAIMED]  # the oldest processed one was forgotten
    assert store.claim(["d"], 60, "A") == [Claim.DONE]
    for number in range(200_000):  # a flood of processed events
        store.complete([f"flood-{number}"], 3600, "A")
    assert len(store) <= 3 + 2  # three remembered, and the two live claims
    assert store.claim(["live"], 60, "A") == [Claim.BUSY]  # still held by its worker


def test_event_keys_are_per_entity_and_event_type() -> None:
    payload = EventsPayload(
        "op",
        (
            make_event("STARTED", id="x"),
            make_event("FINISHED", id="x"),
            hubsig.Event("STARTED", None),
        ),
    )
    keys = event_keys(payload, payload.to_json())
    assert keys[:2] == ["STARTED:x", "FINISHED:x"]
    assert keys[2].startswith("STARTED:op:")
    assert keys[2].endswith(":2")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["STARTED", "FINISHED"]), st.sampled_from("abcd")), max_size=8
    ),
    st.data(),
)
def test_admission_follows_the_plain_rule(
    events: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Whatever the store answers, for repeated events too, the fast paths decide as the
    plain rule does: busy if any claim is busy; else each event whose claim this attempt
    won, at its first occurrence, is fresh; the keys won are the ones to settle."""
    payload = EventsPayload("op", tuple(make_event(kind, id=entity) for kind, entity in events))
    keys = event_keys(payload, payload.to_json())
    unique = unique_keys(keys)
    claims = data.draw(
        st.lists(st.sampled_from(list(Claim)), min_size=len(unique), max_size=len(unique))
    )
    decided = admission(payload, keys, claims)
    verdict = dict(zip(unique, claims, strict=True))
    won = {Claim.CLAIMED, Claim.RECLAIMED}
    assert decided.keys == tuple(key for key in unique if verdict[key] in won)
    if not events:
        assert decided.fresh == payload
        assert not decided.busy
        return
    assert decided.busy == (Claim.BUSY in claims)
    if decided.busy:
        assert decided.fresh is None
        return
    first = [keys.index(key) == position for position, key in enumerate(keys)]
    fresh = tuple(
        e
        for e, key, f in zip(payload.events, keys, first, strict=True)
        if f and verdict[key] in won
    )
    assert decided.fresh == (EventsPayload("op", fresh) if fresh else None)
    assert decided.redelivered == (bool(fresh) and Claim.RECLAIMED in claims)


# --- through the endpoint and the middlewares ------------------------------------------


def deliver(adapter: str, config: WebhookConfig, payload: EventsPayload, **options: Any) -> Any:
    request = signed_request(payload, SECRET, **options)
    return ADAPTERS[adapter](config, Sent([request.body], dict(request.headers)))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_duplicate_is_acknowledged_with_the_same_ids_without_the_app(adapter: str) -> None:
    config = WebhookConfig(secret=SECRET, store=MemoryStore())
    payload = make_events(3)
    first = deliver(adapter, config, payload)
    replayed = deliver(adapter, config, payload)
    assert first.status == replayed.status == 200
    assert first.json["data"] == replayed.json["data"]
    assert [i["id"] for i in replayed.json["data"]["ids"]] == list(payload.entity_ids)
    assert first.reached_app
    assert not replayed.reached_app


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_only_new_events_of_a_partly_seen_delivery_reach_the_app(adapter: str) -> None:
    config = WebhookConfig(secret=SECRET, store=MemoryStore())
    a, b, c = (make_event(id=f"e-{n}") for n in range(3))
    deliver(adapter, config, EventsPayload("op-1", (a, b)))
    answer = deliver(adapter, config, EventsPayload("op-2", (b, c)))
    assert answer.status == 200
    if adapter.startswith("webhook"):  # behind a middleware, the app writes the answer
        assert [i["id"] for i in answer.json["data"]["ids"]] == ["e-1", "e-2"]
    (seen,) = answer.seen
    assert seen.delivery.payload.entity_ids == ("e-2",)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_failed_handler_releases_its_claims_so_the_retry_processes_once(adapter: str) -> None:
    config = WebhookConfig(secret=SECRET, store=MemoryStore())
    payload = make_events(2)
    failing = deliver(adapter, config, payload, extra_headers={"x-test-fail": "1"})
    assert failing.status == 500
    retry = deliver(adapter, config, payload)
    again = deliver(adapter, config, payload)
    assert (retry.status, again.status) == (200, 200)
    assert retry.reached_app
    assert not again.reached_app


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_event_in_progress_elsewhere_gets_409_and_is_retried(adapter: str) -> None:
    store = MemoryStore()
    config = WebhookConfig(secret=SECRET, store=store)
    payload = make_events(2)
    store.claim([event_keys(payload, b"")[1]], 60, "other")  # another worker is on it
    busy = deliver(adapter, config, payload)
    assert busy.status == 409
    assert busy.json["status"]["code"] == 409
    assert not busy.reached_app
    store.release([event_keys(payload, b"")[1]], "other")  # it failed and gave it back
    assert deliver(adapter, config, payload).status == 200


class FlakyStore(MemoryStore):
    """A store that is unreachable while ``down`` is set."""

    down = False

    def claim(self, keys: Any, lease: float, token: str) -> list[Claim]:
        if self.down:
            raise StoreUnavailable("down")
        return super().claim(keys, lease, token)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_store_unavailable_answers_500_then_recovers(adapter: str) -> None:
    store = FlakyStore()
    config = WebhookConfig(secret=SECRET, store=store)
    payload = make_events()
    store.down = True
    down = deliver(adapter, config, payload)
    assert down.status == 500
    assert not down.reached_app
    store.down = False
    assert deliver(adapter, config, payload).reached_app


def test_concurrent_duplicates_run_the_handler_once() -> None:
    calls: list[str] = []

    @hubsig.webhook(secret=SECRET)
    async def slow(payload: EventsPayload) -> None:
        calls.append(payload.operation_id or "")
        await asyncio.sleep(0.05)

    from tests.adapters import _call_asgi

    request = signed_request(make_events(2), SECRET)
    sent = Sent([request.body], dict(request.headers))

    async def many() -> list[Any]:
        return await asyncio.gather(*(_call_asgi(slow, sent) for _ in range(10)))

    statuses = sorted(status for status, _, _ in asyncio.run(many()))
    assert len(calls) == 1
    assert statuses.count(200) == 1
    assert statuses.count(409) == 9


def test_sqlite_remembers_across_a_restart(tmp_path: Path) -> None:
    payload = make_events(2)
    from tests.adapters import _call_wsgi

    processed = []
    for _ in range(2):  # the second endpoint is the restarted receiver, same file
        calls: list[EventsPayload] = []
        store = SQLiteStore(tmp_path / "events.db")
        endpoint = hubsig.webhook(secret=SECRET, store=store)(calls.append)
        request = signed_request(payload, SECRET)
        status, _, _ = _call_wsgi(endpoint.wsgi, Sent([request.body], dict(request.headers)))
        assert status == 200
        store.close()
        processed.append(len(calls))
    assert processed == [1, 0]


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
    from tests.adapters import _call_wsgi

    def post(payload: EventsPayload) -> int | None:
        request = signed_request(payload, SECRET)
        return _call_wsgi(endpoint.wsgi, Sent([request.body], dict(request.headers)))[0]

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


def test_middleware_with_store_none_does_not_dedupe() -> None:
    config = WebhookConfig(secret=SECRET, store=None)
    payload = make_events()
    for middleware in (asgi_middleware, wsgi_middleware):
        request = signed_request(payload, SECRET)
        sent = Sent([request.body], dict(request.headers))
        assert middleware(config, sent).reached_app
        assert middleware(config, sent).reached_app


def test_policy_lease_is_used(tmp_path: Path) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    config = WebhookConfig(secret=SECRET, store=store, dedupe=DedupePolicy(lease=5, retention=10))
    payload = make_events()
    assert deliver("webhook-wsgi", config, payload).status == 200
    clock.now += 11  # retention over: the event is forgotten and processed again
    assert deliver("webhook-wsgi", config, payload).reached_app


def test_the_memory_store_says_once_that_it_covers_one_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hubsig")
    store = MemoryStore()
    for key in ("a", "b", "c"):
        store.claim([key], 60, "A")
    notes = [r for r in caplog.records if "this process only" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.INFO]


@pytest.mark.parametrize("answer", [["claimed"], None, []], ids=["strings", "none", "too-few"])
def test_a_store_that_breaks_its_contract_is_a_500_and_gives_its_keys_back(answer: Any) -> None:
    released: list[list[str]] = []

    class Broken(MemoryStore):
        def claim(self, keys: Any, lease: float, token: str) -> Any:
            return answer

        def release(self, keys: Any, token: str) -> None:
            released.append(list(keys))

    ran: list[int] = []
    endpoint = hubsig.webhook(secret=SECRET, store=Broken())(lambda payload: ran.append(1))
    body = make_events(1).to_json()
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})
    status, _, _ = asyncio.run(_call_asgi(endpoint, sent))
    assert (status, ran) == (500, [])
    assert len(released) == 1


@pytest.mark.parametrize("failures", [2, 10])
def test_once_the_handler_succeeded_the_answer_is_200(
    failures: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Completion is retried; if the store still fails, the delivery is acknowledged anyway
    (a 500 would make the sender redeliver work that was done) and an ERROR says so."""
    attempts: list[int] = []

    class Flaky(MemoryStore):
        def complete(self, keys: Any, retention: float, token: str) -> None:
            attempts.append(1)
            if len(attempts) <= failures:
                raise StoreUnavailable("down")
            super().complete(keys, retention, token)

    ran: list[int] = []
    endpoint = hubsig.webhook(secret=SECRET, store=Flaky())(lambda payload: ran.append(1))
    body = make_events(1).to_json()
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})
    status, _, _ = asyncio.run(_call_asgi(endpoint, sent))
    assert (status, ran) == (200, [1])
    gave_up = [r for r in caplog.records if "acknowledging anyway" in r.getMessage()]
    if failures < 4:
        assert (len(attempts), gave_up) == (failures + 1, [])
    else:
        assert len(attempts) == 4
        assert [r.levelname for r in gave_up] == ["ERROR"]
        again, _, _ = asyncio.run(_call_asgi(endpoint, sent))
        assert again == 409  # still claimed: only after the lease could it run again


def test_a_sqlite_file_from_before_fenced_claims_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE hubsig_events (key TEXT PRIMARY KEY, state TEXT, expires REAL)")
        db.execute("INSERT INTO hubsig_events VALUES ('old', 'done', 1e12)")
    store = SQLiteStore(path)
    assert store.claim(["old", "new"], 60, "A") == [Claim.DONE, Claim.CLAIMED]
    store.complete(["new"], 3600, "A")
    assert store.claim(["new"], 60, "B") == [Claim.DONE]
    store.close()


@pytest.mark.parametrize("protocol", ["asgi", "wsgi"])
def test_a_handler_slower_than_its_lease_keeps_its_claims_and_runs_once(
    store: Any, protocol: str
) -> None:
    """Lease 0.6 s, handler 1.5 s, retries at 0.8 and 1.2 s: the claims are renewed (every
    0.2 s) while the handler works, so the retries get 409 and the handler runs once, in
    every store. The margins leave a loaded machine 0.4 s of slack per renewal."""
    runs: list[float] = []

    def slow(payload: EventsPayload) -> None:
        runs.append(time.monotonic())
        time.sleep(1.5)

    policy = DedupePolicy(lease=0.6, retention=3600)
    endpoint = hubsig.webhook(secret=SECRET, store=store, dedupe=policy)(slow)
    body = make_events(2).to_json()
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})

    def post(delay: float) -> int | None:
        time.sleep(delay)
        if protocol == "asgi":
            return asyncio.run(_call_asgi(endpoint, sent))[0]
        return _call_wsgi(endpoint.wsgi, sent)[0]

    answers: list[int | None] = [None, None, None]
    threads = [
        threading.Thread(target=lambda i=i, d=d: answers.__setitem__(i, post(d)))
        for i, d in enumerate((0.0, 0.8, 1.2))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200, 409, 409]
    assert len(runs) == 1
    assert post(0.0) == 200  # processed: the replay is acknowledged without running it
    assert len(runs) == 1
