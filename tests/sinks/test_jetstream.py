"""``hubsig.sinks.jetstream`` and ``hubsig.workers.jetstream`` against a real nats-server
with JetStream on file storage: acknowledged once stored, processed once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest

from hubsig._dedupe import DedupePolicy
from hubsig.errors import ConfigurationError
from hubsig.sinks.jetstream import JetStreamSink, subject_matches
from hubsig.stores import SQLiteStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.jetstream import JetStreamWorker
from tests.sinks.conftest import fresh_name, post, receiver, signed
from tests.sinks.servers import NatsServer, free_port

T = TypeVar("T")


def _stream_name() -> str:
    return fresh_name("S").replace("-", "_").upper()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def _stored(url: str, stream: str) -> list[dict[str, Any]]:
    """Every message of ``stream``, as the sink's JSON."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        info = await js.stream_info(stream)
        if not info.state.messages:
            return []
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, sequence)
            found.append(json.loads(message.data or b"{}"))
        return found
    finally:
        await client.close()


def _recording_worker(
    url: str, stream: str, folder: Path, **options: Any
) -> tuple[JetStreamWorker, Path]:
    path = folder / "worker.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS processed (key TEXT, trace TEXT)")

    def record(event: ClaimedEvent) -> None:
        event.transaction().execute(
            "INSERT INTO processed VALUES (?, ?)", (event.key, event.trace_id)
        )

    options.setdefault("fetch_wait", 0.2)
    worker = JetStreamWorker(
        url, stream, "workers", store=SQLiteStore(path), handler=record, **options
    )
    return worker, path


def _processed(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, trace FROM processed ORDER BY rowid").fetchall()


async def _drain(worker: JetStreamWorker, rounds: int = 2) -> int:
    """Run the worker until ``rounds`` fetches in a row find nothing."""
    total, idle = 0, 0
    while idle < rounds:
        count = await worker.run_once()
        total += count
        idle = 0 if count else idle + 1
    return total


def test_events_are_stored_once_and_a_worker_commits_each_once(
    nats_url: str, tmp_path: Path
) -> None:
    stream = _stream_name()
    first, second = signed(3, trace_id="463ac35c9f6413ad48485a3953bb6124"), signed(2)
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert [post(client, r) for r in (first, second, first)] == [200, 200, 200]
    sink.close()
    stored = run(_stored(nats_url, stream))
    assert len(stored) == 5
    assert set(stored[0]) == {"key", "event", "operation_id", "trace_id"}
    worker, path = _recording_worker(nats_url, stream, tmp_path)

    async def work() -> None:
        await worker.connect()
        await _drain(worker)
        await worker.close()

    run(work())
    processed = _processed(path)
    assert len(processed) == 5 == len({key for key, _ in processed})
    traces = sorted(trace for _, trace in processed)  # in any order the workers took them
    assert traces.count("463ac35c9f6413ad48485a3953bb6124") == 3  # the sender's, carried on
    assert traces.count(second.headers["X-B3-TraceId"]) == 2


def test_keys_a_header_would_spell_alike_are_two_messages(nats_url: str) -> None:
    """Header values are trimmed and their CR/LF made spaces on the way: were the key the
    ``Nats-Msg-Id``, the second event here would be dropped after its 200."""
    from hubsig import Entity, Event, EventType
    from hubsig.testing import make_events, signed_request
    from tests.sinks.conftest import SECRET

    ids = ["jx", "jx ", "cr\rx", "cr\nx"]
    events = [Event(EventType.STARTED, Entity(id=entity_id)) for entity_id in ids]
    request = signed_request(make_events(events=events), SECRET)
    stream = _stream_name()
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert post(client, request) == 200
    sink.close()
    stored = run(_stored(nats_url, stream))
    assert sorted(message["key"] for message in stored) == sorted(f"STARTED:{i}" for i in ids)


def test_an_event_larger_than_the_servers_max_payload_is_a_413_and_nothing_is_sent(
    nats_url: str,
) -> None:
    """``1E15`` is written back by ``json`` as ``1000000000000000.0``: a 300 KB body whose
    event becomes a message past NATS's 1 MB. A retry would fail for ever: 413, not 503."""
    from hubsig.testing import signed_request
    from tests.sinks.conftest import SECRET

    numbers = ",".join(["1E15"] * 75_000)
    body = (
        '{"operationId":"op-1","data":{"entities":[{"event":"STARTED","entity":{"id":"small"}},'
        f'{{"event":"STARTED","entity":{{"id":"big"}},"extra":[{numbers}]}}]}}}}'
    ).encode()
    stream = _stream_name()
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert post(client, signed_request(body, SECRET)) == 413
    sink.close()
    assert run(_stored(nats_url, stream)) == []  # not even the small one: all, or none


def test_jetstream_drops_a_republished_event_by_its_message_id(nats_url: str) -> None:
    stream = _stream_name()
    request = signed(2)
    for _ in range(2):  # two receivers without a shared store: the second republishes
        sink = JetStreamSink(nats_url, stream)
        with receiver(sink) as client:
            assert post(client, request) == 200
        sink.close()
    assert len(run(_stored(nats_url, stream))) == 2


def test_a_message_whose_worker_died_is_redelivered_and_processed_once(
    nats_url: str, tmp_path: Path
) -> None:
    stream = _stream_name()
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert post(client, signed(2)) == 200
    sink.close()
    worker, path = _recording_worker(nats_url, stream, tmp_path, policy=DedupePolicy(lease=1.0))

    async def work() -> None:
        await worker.connect()  # makes the consumer (ack_wait: the lease)
        # A worker fetches the messages and dies without acknowledging them.
        client = await nats.connect(nats_url)
        dead = await client.jetstream().pull_subscribe_bind("workers", stream)
        assert len(await dead.fetch(2, timeout=2)) == 2
        await client.close()
        assert await worker.run_once() == 0  # still theirs until ack_wait ends
        await asyncio.sleep(1.05)
        await _drain(worker, rounds=1)
        await worker.close()

    run(work())
    assert len(_processed(path)) == 2


def test_a_message_whose_handler_failed_is_redelivered(nats_url: str, tmp_path: Path) -> None:
    stream = _stream_name()
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert post(client, signed(1)) == 200
    sink.close()
    calls: list[bool] = []

    def flaky(event: ClaimedEvent) -> None:
        calls.append(event.redelivered)
        if len(calls) == 1:
            raise RuntimeError("the CRM is down")

    worker = JetStreamWorker(
        nats_url, stream, "workers", store=SQLiteStore(tmp_path / "w.db"), handler=flaky,
        fetch_wait=0.2, retry_delay=0.1,
    )  # fmt: skip

    async def work() -> None:
        await worker.connect()
        await _drain(worker)
        await worker.close()

    run(work())
    assert calls == [False, False]  # released, not expired: not marked redelivered


def test_an_async_handler_runs_on_the_workers_loop(nats_url: str, tmp_path: Path) -> None:
    stream = _stream_name()
    sink = JetStreamSink(nats_url, stream)
    with receiver(sink) as client:
        assert post(client, signed(2)) == 200
    sink.close()
    keys: list[str] = []

    async def handle(event: ClaimedEvent) -> None:
        await asyncio.sleep(0)
        keys.append(event.key)

    worker = JetStreamWorker(
        nats_url, stream, "workers", store=SQLiteStore(tmp_path / "w.db"), handler=handle,
        fetch_wait=0.2,
    )  # fmt: skip

    async def work() -> None:
        await worker.connect()
        await _drain(worker)
        await worker.close()

    run(work())
    assert len(keys) == 2


@pytest.mark.slow  # kill -9 of the server, then waiting for the sink to reconnect
def test_with_nats_down_deliveries_get_503_and_every_200_is_stored(
    own_nats: NatsServer,
) -> None:
    stream = _stream_name()
    sink = JetStreamSink(own_nats.url, stream, timeout=0.5)
    answers: list[tuple[int, str]] = []
    with receiver(sink) as client:
        for _ in range(3):
            answers.append((post(client, request := signed(1)), request_id(request.body)))
        own_nats.stop(kill=True)
        for _ in range(2):
            answers.append((post(client, request := signed(1)), request_id(request.body)))
        own_nats.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until the sink has reconnected
            answers.append((post(client, request := signed(1)), request_id(request.body)))
            if answers[-1][0] == 200:
                break
    sink.close()
    statuses = [status for status, _ in answers]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:5] == [503, 503]
    assert statuses[-1] == 200
    stored = {message["key"].split(":", 1)[1] for message in run(_stored(own_nats.url, stream))}
    acknowledged = {i for status, i in answers if status == 200}
    assert acknowledged <= stored  # every 200 is in the stream, kill -9 notwithstanding


def request_id(body: bytes) -> str:
    entity: str = json.loads(body)["data"]["entities"][0]["entity"]["id"]
    return entity


def test_an_unreachable_server_stops_start_up() -> None:
    sink = JetStreamSink(f"nats://127.0.0.1:{free_port()}", "S", timeout=0.2)
    with pytest.raises(ConfigurationError, match="cannot reach"):
        receiver(sink)
    sink.close()


def test_a_stream_that_is_missing_and_may_not_be_made_stops_start_up(nats_url: str) -> None:
    sink = JetStreamSink(nats_url, _stream_name(), create=False)
    with pytest.raises(ConfigurationError, match="does not exist"):
        sink.check()
    sink.close()


def test_a_stream_that_does_not_take_the_subject_stops_start_up(nats_url: str) -> None:
    stream = _stream_name()
    maker = JetStreamSink(nats_url, stream)
    maker.check()  # made on STREAM.events
    maker.close()
    sink = JetStreamSink(nats_url, stream, subject="elsewhere.events")
    with pytest.raises(ConfigurationError, match=r"does not take the subject elsewhere\.events"):
        sink.check()
    sink.close()


def test_a_user_who_may_not_publish_stops_start_up_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    config = """
    accounts {
      APP {
        jetstream: enabled
        users: [
          {user: admin, password: pw}
          {user: reader, password: pw, permissions: {publish: {deny: ["S1.events"]}}}
        ]
      }
    }
    """
    server = NatsServer(tmp_path, config)
    server.start()
    try:
        admin = server.url.replace("nats://", "nats://admin:pw@")
        maker = JetStreamSink(admin, "S1")
        maker.check()  # the stream exists now
        maker.close()
        sink = JetStreamSink(server.url.replace("nats://", "nats://reader:pw@"), "S1", timeout=0.5)
        with pytest.raises(ConfigurationError, match=r"cannot publish to S1\.events"):
            sink.check()
        assert "pw" not in repr(sink)
        sink.close()
        assert run(_stored(admin, "S1")) == []
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("subject", "pattern", "matches"),
    [
        ("a.events", "a.events", True),
        ("a.events", "a.*", True),
        ("a.events", "a.>", True),
        ("a.events", ">", True),
        ("a.events", "a", False),
        ("a", "a.>", False),
        ("a.events.x", "a.*", False),
        ("b.events", "a.*", False),
    ],
)
def test_subjects_match_as_nats_matches_them(subject: str, pattern: str, matches: bool) -> None:
    assert subject_matches(subject, pattern) is matches
