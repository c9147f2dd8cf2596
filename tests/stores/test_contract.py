"""The contract every delivery store keeps, run against each of them: memory, SQLite, Redis and
PostgreSQL (the store fixture in tests/conftest.py): claims, fencing, leases, renewal,
retention and redelivery marks."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig import EventsPayload
from hubsig._dedupe import Claim, DedupePolicy
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.testing import make_events
from tests.conftest import fresh_prefix
from tests.harness import Sent, call_asgi, call_wsgi
from tests.stores import SECRET, Clock, keys_of, signed


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
            return asyncio.run(call_asgi(endpoint, sent))[0]
        return call_wsgi(endpoint.wsgi, sent)[0]

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


def test_an_event_whose_claim_expired_unsettled_reaches_the_handler_as_redelivered(
    store: Any,
) -> None:
    seen: list[bool] = []
    endpoint = hubsig.webhook(secret=SECRET, store=store)(
        lambda payload, delivery: seen.append(delivery.redelivered)
    )
    first, crashed = signed(make_events(2)), signed(make_events(2))
    assert call_wsgi(endpoint.wsgi, first)[0] == 200
    store.claim(keys_of(crashed), 0.05, "a-worker-that-died")  # and never settled
    time.sleep(0.15)
    assert call_wsgi(endpoint.wsgi, crashed)[0] == 200
    assert seen == [False, True]


def test_a_retry_after_a_failed_handler_is_not_a_redelivery(store: Any) -> None:
    """A failed handler releases its claims: its retry is an ordinary one."""
    seen: list[bool] = []

    def flaky(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        seen.append(delivery.redelivered)
        if len(seen) == 1:
            raise RuntimeError("the first try fails")

    endpoint = hubsig.webhook(secret=SECRET, store=store)(flaky)
    sent = signed(make_events(2))
    assert call_wsgi(endpoint.wsgi, sent)[0] == 500
    assert call_wsgi(endpoint.wsgi, sent)[0] == 200
    assert seen == [False, False]
