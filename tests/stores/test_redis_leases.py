"""A Redis claim lost to a stall is never lost silently: one ERROR line per event.

Two stores on their own clients stand for two receiver processes sharing a
real Redis. When one's lease ends before Redis confirms its renewal, and the
other reclaims the event, the first logs at ERROR, once per event, with the
event's key and the delivery's trace id; the other's run is ``RECLAIMED``
(``delivery.redelivered``). Ordinary deliveries log nothing.
``benchmarks/redis_stall.py`` runs the same with two real processes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hubsig
from hubsig import Claim
from hubsig.stores._leases import TAKEN, UNCONFIRMED, Leases
from hubsig.testing import make_events
from tests.conftest import fresh_prefix
from tests.redis_server import RedisServer, can_start

pytest.importorskip("redis")

LEASE = 0.3


@pytest.fixture(scope="module")
def stallable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server that ``DEBUG SLEEP`` can stall."""
    if not can_start():
        pytest.skip("needs redis-server, to stall one with DEBUG SLEEP")
    server = RedisServer(
        tmp_path_factory.mktemp("redis-stall"), ("--enable-debug-command", "local")
    )
    server.start()
    yield server
    server.stop()


def announced(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """``(event key, trace id)`` of every ERROR saying an event may run again elsewhere."""
    return [
        (str(record.args[0]), str(record.args[1]))  # type: ignore[index]
        for record in caplog.records
        if record.levelno == logging.ERROR and record.msg in (TAKEN, UNCONFIRMED)
    ]


def two_processes(url: str) -> tuple[Any, Any]:
    from hubsig.stores.redis import RedisStore

    prefix = fresh_prefix()
    return RedisStore(url, prefix), RedisStore(url, prefix)


def test_a_renewal_that_finds_the_event_reclaimed_says_so_once_per_event(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = two_processes(redis_url)
    trace = hubsig.TraceContext.new()
    with hubsig.use_trace(trace):
        assert first.claim(["a", "b"], LEASE, "first") == [Claim.CLAIMED] * 2
    time.sleep(LEASE + 0.1)  # the first's renewals were stuck meanwhile
    assert second.claim(["a"], 5, "second") == [Claim.RECLAIMED]
    with caplog.at_level(logging.ERROR, "hubsig"):
        first.renew(["a", "b"], LEASE, "first")
        first.complete(["a", "b"], 60, "first")  # finds "a" taken again: said once already
    assert announced(caplog) == [("a", trace.trace_id)]
    assert len(first._leases) == 0  # settled: nothing kept


def test_a_completion_that_finds_the_event_taken_says_so(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No renewal ran (the handler was short, or its renewals were cancelled)."""
    first, second = two_processes(redis_url)
    assert first.claim(["a", "b"], LEASE, "first") == [Claim.CLAIMED] * 2
    time.sleep(LEASE + 0.1)
    assert second.claim(["a"], 5, "second") == [Claim.RECLAIMED]
    second.complete(["a"], 60, "second")
    with caplog.at_level(logging.ERROR, "hubsig"):
        first.complete(["a", "b"], 60, "first")  # "a" is done by the other: it ran twice
    assert [key for key, _ in announced(caplog)] == ["a"]


def test_ordinary_deliveries_and_late_answers_of_ones_own_calls_say_nothing(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = two_processes(redis_url)
    with caplog.at_level(logging.ERROR, "hubsig"):
        first.claim(["a", "b"], LEASE, "first")
        first.renew(["a", "b"], LEASE, "first")
        first.complete(["a", "b"], 60, "first")
        first.renew(["a", "b"], LEASE, "first")  # a renewal answered after the completion
        first.complete(["a", "b"], 60, "first")  # a retried completion finds its own work
        first.claim(["c"], LEASE, "again")
        first.release(["c"], "again")
        first.renew(["c"], LEASE, "again")  # a renewal answered after the release
    assert announced(caplog) == []
    assert len(first._leases) == 0


@pytest.mark.skipif(not can_start(), reason="needs redis-server to stop it")
def test_a_renewal_that_fails_after_the_lease_ended_says_the_event_may_run_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    store, _ = two_processes(server.url + "?socket_timeout=1")
    store.claim(["a"], LEASE, "first")
    server.stop()
    with caplog.at_level(logging.ERROR, "hubsig"):
        with pytest.raises(hubsig.StoreUnavailable):
            store.renew(["a"], LEASE, "first")  # within the lease: the next renewal may do
        assert announced(caplog) == []
        time.sleep(LEASE)
        with pytest.raises(hubsig.StoreUnavailable):
            store.renew(["a"], LEASE, "first")
    assert [key for key, _ in announced(caplog)] == ["a"]
    store.close()


def _stall(server: RedisServer, seconds: float) -> threading.Thread:
    import redis

    client = redis.Redis.from_url(server.url)
    stall = threading.Thread(
        target=lambda: client.execute_command("DEBUG", "SLEEP", seconds)  # type: ignore[no-untyped-call]
    )
    stall.start()
    time.sleep(0.05)  # Redis has taken the command and sleeps
    return stall


def test_through_a_stall_longer_than_the_lease_every_reclaim_is_announced(
    stallable: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Whichever reaches Redis first after the stall, the stuck renewal or the other
    process's claim, an event run twice is always one ERROR line of the first process."""
    first, second = two_processes(stallable.url)
    keys = [f"event-{n}" for n in range(12)]
    for key in keys:
        assert first.claim([key], LEASE, f"first-{key}") == [Claim.CLAIMED]
    reclaimed: list[str] = []

    def renew(key: str) -> None:
        first.renew([key], LEASE, f"first-{key}")

    def claim(key: str) -> None:
        if second.claim([key], 5, f"second-{key}") == [Claim.RECLAIMED]:
            reclaimed.append(key)

    stall = _stall(stallable, 2 * LEASE)
    with caplog.at_level(logging.ERROR, "hubsig"):
        calls = [threading.Thread(target=call, args=(key,)) for key in keys for call in (renew,)]
        calls += [threading.Thread(target=claim, args=(key,)) for key in keys]
        for call in calls:
            call.start()
            time.sleep(0.005)
        for call in calls:
            call.join()
        stall.join()
        for key in keys:
            first.complete([key], 60, f"first-{key}")
    assert sorted(key for key, _ in announced(caplog)) == sorted(reclaimed)


def test_the_async_store_announces_a_reclaimed_event_with_its_trace_id(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from hubsig.stores.redis import AsyncRedisStore

    prefix = fresh_prefix()
    trace = hubsig.TraceContext.new()

    async def scenario() -> None:
        first, second = AsyncRedisStore(redis_url, prefix), AsyncRedisStore(redis_url, prefix)
        with hubsig.use_trace(trace):
            assert await first.claim(["a"], LEASE, "first") == [Claim.CLAIMED]
        await asyncio.sleep(LEASE + 0.1)
        assert await second.claim(["a"], 5, "second") == [Claim.RECLAIMED]
        await first.renew(["a"], LEASE, "first")
        await first.complete(["a"], 60, "first")
        await first.close()
        await second.close()

    with caplog.at_level(logging.ERROR, "hubsig"):
        asyncio.run(scenario())
    assert announced(caplog) == [("a", trace.trace_id)]


def test_a_handler_whose_claim_was_taken_is_announced_and_the_retry_is_redelivered(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the endpoint: the lease runs out while the first handler is stuck."""
    from hubsig.stores.redis import RedisStore
    from tests.harness import Sent, call_wsgi

    prefix, secret = fresh_prefix(), "lease-secret"
    payload = make_events(1)
    body = payload.to_json()
    sent = Sent([body], {"X-Hub-Signature": hubsig.sign(body, secret)})
    runs: list[bool] = []
    in_handler, go_on = threading.Event(), threading.Event()

    def stuck(delivery: hubsig.Delivery) -> None:
        runs.append(delivery.redelivered)
        if len(runs) == 1:
            in_handler.set()
            go_on.wait(10)

    policy = hubsig.DedupePolicy(lease=LEASE)

    def endpoint() -> Any:
        store = RedisStore(redis_url, prefix)
        store.renew = lambda *arguments: None  # type: ignore[method-assign]  # a stalled Redis
        return hubsig.webhook(secret=secret, store=store, dedupe=policy)(
            lambda payload, delivery: stuck(delivery)
        )

    first, second = endpoint(), endpoint()
    statuses: list[int | None] = []
    with caplog.at_level(logging.ERROR, "hubsig"):
        sending = threading.Thread(target=lambda: statuses.append(call_wsgi(first.wsgi, sent)[0]))
        sending.start()
        assert in_handler.wait(10)
        time.sleep(LEASE + 0.1)
        assert call_wsgi(second.wsgi, sent)[0] == 200  # the retry, elsewhere
        go_on.set()
        sending.join()
    assert runs == [False, True]
    assert statuses == [200]
    assert [key for key, _ in announced(caplog)] == [f"STARTED:{payload.entity_ids[0]}"]


def test_the_attempts_tracked_are_bounded() -> None:
    leases = Leases(clock=lambda: 0.0)
    for n in range(10_050):
        leases.claimed(uuid.uuid4().hex if n else "oldest", True, 1.0, 0.0)
    assert len(leases) == 10_000
    assert leases.settled("oldest") is None
