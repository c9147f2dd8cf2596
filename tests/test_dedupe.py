"""Each event processed once: the stores' contract, and how the endpoint and middlewares use it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubsig
from hubsig import EventsPayload, WebhookConfig
from hubsig._dedupe import Claim, DedupePolicy, StoreUnavailable, admission, event_keys, unique_keys
from hubsig.stores import MemoryStore
from hubsig.testing import make_event, make_events, signed_request
from tests.adapters import ADAPTERS, asgi_middleware, wsgi_middleware
from tests.harness import Sent, call_asgi
from tests.stores import Clock

SECRET = "dedupe-secret"


# --- event keys and admission (the stores' contract itself: tests/stores/) ----------------


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

    from tests.harness import call_asgi

    request = signed_request(make_events(2), SECRET)
    sent = Sent([request.body], dict(request.headers))

    async def many() -> list[Any]:
        return await asyncio.gather(*(call_asgi(slow, sent) for _ in range(10)))

    statuses = sorted(status for status, _, _ in asyncio.run(many()))
    assert len(calls) == 1
    assert statuses.count(200) == 1
    assert statuses.count(409) == 9


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
    status, _, _ = asyncio.run(call_asgi(endpoint, sent))
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
    status, _, _ = asyncio.run(call_asgi(endpoint, sent))
    assert (status, ran) == (200, [1])
    gave_up = [r for r in caplog.records if "acknowledging anyway" in r.getMessage()]
    if failures < 4:
        assert (len(attempts), gave_up) == (failures + 1, [])
    else:
        assert len(attempts) == 4
        assert [r.levelname for r in gave_up] == ["ERROR"]
        again, _, _ = asyncio.run(call_asgi(endpoint, sent))
        assert again == 409  # still claimed: only after the lease could it run again
