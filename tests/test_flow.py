"""The delivery flow, driven by hand: one test per branch, no server, no event loop.

As httpx's tests drive its auth flow with ``next``/``send``, these step
``hubsig._flow.deliver``: each effect it yields is checked, and the test
sends back what the outside world would answer (a body, a store's claims,
a handler's outcome) or throws in what it would raise. The stores' methods
named by ``StoreCall`` effects are a real ``MemoryStore``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hubsig import Headers, RequestView, TraceContext, WebhookConfig
from hubsig._dedupe import Claim
from hubsig._flow import (
    COMPLETION_RETRIES,
    Await,
    Flow,
    Handle,
    Outcome,
    ReadBody,
    Sleep,
    StoreCall,
    deliver,
)
from hubsig._receiver import Receiver
from hubsig._replies import Reply
from hubsig.errors import ClientDisconnected
from hubsig.stores import MemoryStore
from hubsig.testing import make_events, signed_request

SECRET = "flow-secret"
TRACE = TraceContext.new()


def _flow(
    headers: dict[str, str] | None = None,
    *,
    store: MemoryStore | None = None,
    path: str = "/hook",
    secret: Any = SECRET,
) -> tuple[Flow, bytes, tuple[str, ...]]:
    events = make_events(2)
    request = signed_request(events, SECRET)
    sent = dict(request.headers) if headers is None else headers
    config = WebhookConfig(secret=secret, store=store)
    view = RequestView("POST", path, Headers(sent.items()))
    return deliver(Receiver.of(config), view, TRACE, 0.0), request.body, events.entity_ids


def _returned(step: Callable[[], Any]) -> Reply | None:
    with pytest.raises(StopIteration) as stopped:
        step()
    reply: Reply | None = stopped.value.value
    return reply


def _ids(reply: Reply) -> list[str]:
    return [item["id"] for item in json.loads(reply.body)["data"]["ids"]]


def _read(flow: Flow, body: bytes) -> Any:
    """Answer the ``ReadBody`` effect as an adapter does: feed the check, send the bytes."""
    effect = next(flow)
    assert isinstance(effect, ReadBody)
    effect.check.feed(body)
    return flow.send(body)


# --- refused before anything is read ---------------------------------------------------


def test_an_unsigned_request_is_refused_before_the_body_is_read() -> None:
    flow, _, _ = _flow({"Content-Type": "application/json"})
    reply = _returned(lambda: next(flow))
    assert reply is not None
    assert (reply.status, reply.reason) == (401, "missing_signature")


def test_a_path_with_a_control_character_is_refused_with_400() -> None:
    flow, _, _ = _flow(path="/hook\n")
    reply = _returned(lambda: next(flow))
    assert reply is not None
    assert (reply.status, reply.reason) == (400, "malformed_request")


def test_a_tampered_body_is_refused_after_it_is_read() -> None:
    flow, body, _ = _flow()
    reply = _returned(lambda: _read(flow, body + b" "))
    assert reply is not None
    assert (reply.status, reply.reason) == (401, "signature_mismatch")


def test_an_async_resolver_is_awaited_through_an_effect() -> None:
    async def resolve(request: RequestView) -> str:
        return SECRET

    flow, _, _ = _flow(secret=resolve)
    effect = next(flow)
    assert isinstance(effect, Await)
    effect.awaitable.close()  # type: ignore[attr-defined]  # the test answers it instead
    effect = flow.send(SECRET)
    assert isinstance(effect, ReadBody)


def test_a_client_that_goes_away_mid_body_ends_the_flow_without_an_answer() -> None:
    flow, _, _ = _flow()
    assert isinstance(next(flow), ReadBody)
    with pytest.raises(ClientDisconnected):
        flow.throw(ClientDisconnected())


# --- without a store -----------------------------------------------------------------


def test_without_a_store_the_handler_runs_and_its_own_answer_stands() -> None:
    flow, body, ids = _flow()
    effect = _read(flow, body)
    assert isinstance(effect, Handle)
    assert effect.keep_alive is None
    assert list(effect.delivery.payload.entity_ids) == list(ids)
    assert _returned(lambda: flow.send(Outcome(True))) is None


def test_a_handler_that_asks_for_an_acknowledgement_gets_the_ids() -> None:
    flow, body, ids = _flow()
    _read(flow, body)
    reply = _returned(lambda: flow.send(Outcome(True, acknowledge=True)))
    assert reply is not None
    assert (reply.status, _ids(reply)) == (200, list(ids))


# --- with a store ----------------------------------------------------------------------


def _claimed(flow: Flow, body: bytes) -> StoreCall:
    effect = _read(flow, body)
    assert isinstance(effect, StoreCall)
    assert effect.method.__name__ == "claim"
    return effect


def test_fresh_events_are_claimed_handled_and_completed() -> None:
    store = MemoryStore()
    flow, body, _ = _flow(store=store)
    claim = _claimed(flow, body)
    effect = flow.send(claim.method(*claim.arguments))
    assert isinstance(effect, Handle)
    assert effect.keep_alive is not None  # the claims are renewed while it runs
    complete = flow.send(Outcome(True))
    assert isinstance(complete, StoreCall)
    assert complete.method.__name__ == "complete"
    complete.method(*complete.arguments)
    assert _returned(lambda: flow.send(None)) is None
    claims = store.claim(list(claim.arguments[0]), 60, "another-attempt")
    assert claims == [Claim.DONE, Claim.DONE]  # recorded: a repeat is acknowledged


def test_a_delivery_whose_events_were_all_processed_is_acknowledged_unhandled() -> None:
    flow, body, ids = _flow(store=MemoryStore())
    _claimed(flow, body)
    reply = _returned(lambda: flow.send([Claim.DONE, Claim.DONE]))
    assert reply is not None
    assert (reply.status, _ids(reply)) == (200, list(ids))


def test_an_event_busy_elsewhere_gives_back_the_others_and_asks_for_a_retry() -> None:
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    release = flow.send([Claim.CLAIMED, Claim.BUSY])
    assert isinstance(release, StoreCall)
    assert release.method.__name__ == "release"
    reply = _returned(lambda: flow.send(None))
    assert reply is not None
    assert reply.status == 409


def test_a_handler_that_raises_releases_the_claims_and_the_error_propagates() -> None:
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    flow.send([Claim.CLAIMED, Claim.CLAIMED])
    release = flow.throw(RuntimeError("handler broke"))
    assert isinstance(release, StoreCall)
    assert release.method.__name__ == "release"
    with pytest.raises(RuntimeError, match="handler broke"):
        flow.send(None)


def test_a_handler_that_failed_releases_the_claims_and_its_answer_stands() -> None:
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    flow.send([Claim.CLAIMED, Claim.RECLAIMED])
    own = Reply(500, (), b"no")
    release = flow.send(Outcome(False, own))
    assert isinstance(release, StoreCall)
    assert release.method.__name__ == "release"
    assert _returned(lambda: flow.send(None)) is own


def test_a_store_that_cannot_claim_answers_500_so_the_sender_retries() -> None:
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    reply = _returned(lambda: flow.throw(ConnectionError("store down")))
    assert reply is not None
    assert reply.status == 500


def test_a_store_that_answers_nonsense_gets_the_keys_back_and_500() -> None:
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    release = flow.send(["claimed"])  # not one Claim per key
    assert isinstance(release, StoreCall)
    assert release.method.__name__ == "release"
    reply = _returned(lambda: flow.send(None))
    assert reply is not None
    assert reply.status == 500


def test_a_completion_that_keeps_failing_is_retried_then_acknowledged_anyway() -> None:
    """The handler did its work: a 500 now would make the sender redeliver done work."""
    flow, body, _ = _flow(store=MemoryStore())
    _claimed(flow, body)
    flow.send([Claim.CLAIMED, Claim.CLAIMED])
    effect = flow.send(Outcome(True, acknowledge=True))
    pauses = []
    for _ in range(len(COMPLETION_RETRIES) + 1):
        assert isinstance(effect, StoreCall)
        assert effect.method.__name__ == "complete"
        try:
            effect = flow.throw(ConnectionError("store down"))
        except StopIteration as stopped:
            reply = stopped.value
            break
        assert isinstance(effect, Sleep)
        pauses.append(effect.seconds)
        effect = flow.send(None)
    assert pauses == list(COMPLETION_RETRIES)
    assert reply.status == 200


# --- a sink in place of the handler -----------------------------------------------------


class _ListSink:
    """A sink that keeps what it is given in a list: the flow's side of the contract only
    (the engines' own tests run against real servers, in tests/sinks/)."""

    blocking = True

    def __init__(self) -> None:
        self.published: list[Any] = []

    def check(self) -> None:
        pass

    def publish(self, delivery: Any) -> None:
        self.published.append(delivery)


def _sunk(store: MemoryStore | None) -> tuple[Flow, bytes, tuple[str, ...], _ListSink]:
    sink = _ListSink()
    events = make_events(2)
    request = signed_request(events, SECRET)
    config = WebhookConfig(secret=SECRET, store=store, sink=sink)
    view = RequestView("POST", "/hook", Headers(request.headers.items()))
    return deliver(Receiver.of(config), view, TRACE, 0.0), request.body, events.entity_ids, sink


def test_with_a_sink_the_fresh_events_are_published_instead_of_handled_then_completed() -> None:
    store = MemoryStore()
    flow, body, ids, sink = _sunk(store)
    claim = _claimed(flow, body)
    publish = flow.send(claim.method(*claim.arguments))
    assert isinstance(publish, StoreCall)  # never a Handle: the handler is not called
    assert publish.method == sink.publish
    assert publish.blocks is True
    assert publish.keep_alive is not None  # the claims are renewed while the engine confirms
    publish.method(*publish.arguments)
    complete = flow.send(None)
    assert isinstance(complete, StoreCall)
    assert complete.method.__name__ == "complete"
    complete.method(*complete.arguments)
    reply = _returned(lambda: flow.send(None))
    assert reply is not None
    assert (reply.status, _ids(reply)) == (200, list(ids))
    assert sink.published[0].claims is not None  # the fresh delivery, with its claims


def _sink_failed(error: Exception) -> tuple[Reply, MemoryStore, list[str]]:
    """Run a flow whose sink raised ``error``: its reply, its store, the keys it claimed."""
    store = MemoryStore()
    flow, body, _, _ = _sunk(store)
    claim = _claimed(flow, body)
    flow.send(claim.method(*claim.arguments))
    release = flow.throw(error)
    assert isinstance(release, StoreCall)
    assert release.method.__name__ == "release"
    release.method(*release.arguments)
    reply = _returned(lambda: flow.send(None))
    assert reply is not None
    return reply, store, list(claim.arguments[0])


def test_a_sink_that_fails_releases_the_claims_and_asks_for_a_retry_with_503() -> None:
    reply, store, keys = _sink_failed(ConnectionError("engine down"))
    assert reply.status == 503
    assert ("retry-after", "5") in reply.headers
    assert b"engine down" not in reply.body  # the cause is logged, not answered
    again = store.claim(keys, 60, "the-retry")
    assert again == [Claim.CLAIMED, Claim.CLAIMED]  # the sender's retry can publish them


def test_a_sink_that_can_never_take_the_events_gets_its_4xx_and_the_claims_back() -> None:
    """A retry would fail for ever (an event too large for the engine): no 503 loop."""
    from hubsig import BodyTooLarge

    reply, store, keys = _sink_failed(BodyTooLarge("an event is larger than the engine takes"))
    assert (reply.status, reply.reason) == (413, "body_too_large")
    assert store.claim(keys, 60, "later") == [Claim.CLAIMED, Claim.CLAIMED]


def test_a_sink_class_or_a_thing_that_is_no_sink_stops_the_configuration() -> None:
    from hubsig.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="not the class"):
        WebhookConfig(secret=SECRET, sink=_ListSink)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="check and publish"):
        WebhookConfig(secret=SECRET, sink=object())  # type: ignore[arg-type]


def test_with_a_sink_and_no_store_every_event_is_published() -> None:
    flow, body, ids, sink = _sunk(None)
    publish = _read(flow, body)
    assert isinstance(publish, StoreCall)
    assert publish.method == sink.publish
    reply = _returned(lambda: flow.send(None))
    assert reply is not None
    assert (reply.status, _ids(reply)) == (200, list(ids))


class _SlowSink(_ListSink):
    """A sink whose engine takes longer than a lease to confirm."""

    def publish(self, delivery: Any) -> None:
        import time

        time.sleep(0.35)
        super().publish(delivery)


class _CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.renewals = 0

    def renew(self, keys: Any, lease: float, token: str) -> None:
        self.renewals += 1
        super().renew(keys, lease, token)


@pytest.mark.parametrize("driver", ["asyncio", "blocking"])
def test_a_publish_slower_than_the_lease_keeps_the_claims_renewed(driver: str) -> None:
    """Else another receiver could claim, and publish, the same events meanwhile."""
    import asyncio

    from hubsig import DedupePolicy
    from hubsig._drive import drive, drive_sync

    store = _CountingStore()
    sink = _SlowSink()
    events = make_events(2)
    request = signed_request(events, SECRET)
    config = WebhookConfig(secret=SECRET, store=store, sink=sink, dedupe=DedupePolicy(lease=0.3))
    view = RequestView("POST", "/hook", Headers(request.headers.items()))
    flow = deliver(Receiver.of(config), view, TRACE, 0.0)

    def read(check: Any) -> bytes:
        check.feed(request.body)
        return request.body

    def handle(delivery: Any) -> Outcome:
        raise AssertionError("with a sink, no handler runs")

    if driver == "blocking":
        reply = drive_sync(flow, read, handle)
    else:

        async def read_async(check: Any) -> bytes:
            return read(check)

        async def handle_async(delivery: Any) -> Outcome:
            return handle(delivery)

        reply = asyncio.run(drive(flow, read_async, handle_async, store_blocks=False))
    assert reply is not None
    assert reply.status == 200
    assert len(sink.published) == 1
    assert store.renewals >= 2  # every lease / 3 = 0.1 s of the 0.35 s publish


def test_the_flow_module_imports_no_driver_of_its_own() -> None:
    """The module that decides does no I/O: no asyncio, threads or clock (``hubsig._drive``
    carries the effects out)."""
    import ast
    from pathlib import Path

    import hubsig._flow

    tree = ast.parse(Path(hubsig._flow.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"asyncio", "threading", "time", "concurrent", "socket"}
