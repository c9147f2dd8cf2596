"""``hubsig.sinks.redis_streams`` and ``hubsig.workers.redis_streams`` against a real
redis-server with an append-only file: published once durable, processed once."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from hubsig.errors import ConfigurationError
from hubsig.sinks.redis_streams import RedisStreamSink
from hubsig.stores import SQLiteStore
from hubsig.workers import ClaimedEvent
from hubsig.workers.redis_streams import RedisStreamWorker
from tests.redis_server import RedisServer
from tests.sinks.conftest import fresh_name, post, receiver, signed
from tests.sinks.servers import durable_redis


def _entries(url: str, stream: str) -> list[dict[bytes, bytes]]:
    entries: Any = redis.Redis.from_url(url).xrange(stream)  # [(id, {field: value})]
    return [fields for _, fields in entries]


def _recording_worker(
    url: str, stream: str, folder: Path, **options: Any
) -> tuple[RedisStreamWorker, Path]:
    """A worker that inserts each event's key into a table in its store's transaction."""
    path = folder / "worker.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS processed (key TEXT, trace TEXT)")
    store = SQLiteStore(path)

    def record(event: ClaimedEvent) -> None:
        event.transaction().execute(
            "INSERT INTO processed VALUES (?, ?)", (event.key, event.trace_id)
        )

    options.setdefault("block", 0.05)
    return RedisStreamWorker(url, stream, "workers", store=store, handler=record, **options), path


def _processed(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, trace FROM processed ORDER BY rowid").fetchall()


def _pending(url: str, stream: str) -> int:
    return int(redis.Redis.from_url(url).xpending(stream, "workers")["pending"])


def test_events_reach_the_stream_once_and_a_worker_commits_each_once(
    stream_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = fresh_name()
    first, second = signed(3, trace_id="463ac35c9f6413ad48485a3953bb6124"), signed(2)
    with receiver(RedisStreamSink(stream_redis.url, stream)) as client:
        assert [post(client, r) for r in (first, second, first)] == [200, 200, 200]
    entries = _entries(stream_redis.url, stream)
    assert len(entries) == 5
    assert set(entries[0]) == {b"key", b"event", b"operation_id", b"trace_id"}
    worker, path = _recording_worker(stream_redis.url, stream, tmp_path)
    caplog.set_level(logging.INFO, "hubsig")
    while worker.run_once():
        pass
    processed = _processed(path)
    assert len(processed) == 5 == len({key for key, _ in processed})
    traces = sorted(trace for _, trace in processed)  # in any order the workers took them
    assert traces.count("463ac35c9f6413ad48485a3953bb6124") == 3  # the sender's, carried on
    assert traces.count(second.headers["X-B3-TraceId"]) == 2
    assert _pending(stream_redis.url, stream) == 0


def test_a_republished_event_is_processed_once_and_both_entries_acknowledged(
    stream_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = fresh_name()
    request = signed(2)
    # Two receivers that do not share a store: the second publishes the same events again,
    # as a receiver does after it published and crashed before recording it.
    for _ in range(2):
        with receiver(RedisStreamSink(stream_redis.url, stream)) as client:
            assert post(client, request) == 200
    assert len(_entries(stream_redis.url, stream)) == 4
    worker, path = _recording_worker(stream_redis.url, stream, tmp_path)
    caplog.set_level(logging.INFO, "hubsig.worker")
    worker.run_once()
    assert len(_processed(path)) == 2
    assert _pending(stream_redis.url, stream) == 0
    duplicates = [r for r in caplog.records if "duplicate event acknowledged" in r.getMessage()]
    assert len(duplicates) == 2
    assert all(request.headers["X-B3-TraceId"] in r.getMessage() for r in duplicates)


def test_entries_of_a_consumer_that_died_are_taken_over_after_idle(
    stream_redis: RedisServer, tmp_path: Path
) -> None:
    stream = fresh_name()
    with receiver(RedisStreamSink(stream_redis.url, stream)) as client:
        assert post(client, signed(3)) == 200
    worker, path = _recording_worker(stream_redis.url, stream, tmp_path, idle=0.5)
    # A consumer reads the entries and dies before acknowledging them (kill -9).
    redis.Redis.from_url(stream_redis.url).xreadgroup("workers", "dead", {stream: ">"})
    assert worker.run_once() == 0  # not idle long enough yet: nothing to take over
    threading.Event().wait(0.55)
    assert worker.run_once() == 3
    assert len(_processed(path)) == 3
    assert _pending(stream_redis.url, stream) == 0


def test_an_entry_whose_handler_failed_is_processed_when_taken_over(
    stream_redis: RedisServer, tmp_path: Path
) -> None:
    stream = fresh_name()
    with receiver(RedisStreamSink(stream_redis.url, stream)) as client:
        assert post(client, signed(1)) == 200
    calls: list[str] = []

    def flaky(event: ClaimedEvent) -> None:
        calls.append(event.key)
        if len(calls) == 1:
            raise RuntimeError("the CRM is down")

    worker = RedisStreamWorker(
        stream_redis.url, stream, "workers", store=SQLiteStore(tmp_path / "w.db"),
        handler=flaky, idle=0.1, block=0.05,
    )  # fmt: skip
    worker.run_once()
    assert _pending(stream_redis.url, stream) == 1  # failed: kept for a retry
    threading.Event().wait(0.15)
    worker.run_once()
    assert len(calls) == 2
    assert _pending(stream_redis.url, stream) == 0


def test_with_redis_down_deliveries_get_503_and_every_200_is_in_the_stream(
    tmp_path: Path,
) -> None:
    server = durable_redis(tmp_path)
    server.start()
    stream = fresh_name()
    answers: list[tuple[int, tuple[str, ...]]] = []
    try:
        with receiver(RedisStreamSink(server.url, stream)) as client:
            for round_ in range(3):
                for _ in range(5):
                    request = signed(2)
                    response = client.post("/", content=request.body, headers=request.headers)
                    if round_ == 1:
                        assert response.status_code == 503
                        assert response.headers["Retry-After"]
                    ids = tuple(i["id"] for i in response.json().get("data", {}).get("ids", []))
                    answers.append((response.status_code, ids or request_ids(request.body)))
                if round_ == 0:
                    server.stop()  # SIGTERM; the append-only file has every acknowledged entry
                elif round_ == 1:
                    server.start()
        in_stream = {
            fields[b"key"].decode().split(":", 1)[1] for fields in _entries(server.url, stream)
        }
    finally:
        server.stop()
    acknowledged = {i for status, ids in answers if status == 200 for i in ids}
    refused = {i for status, ids in answers if status == 503 for i in ids}
    assert len(acknowledged) == 20
    assert len(refused) == 10
    assert acknowledged == in_stream  # nothing acknowledged that is not in the stream


def request_ids(body: bytes) -> tuple[str, ...]:
    import json

    return tuple(e["entity"]["id"] for e in json.loads(body)["data"]["entities"])


def test_an_unreachable_redis_stops_start_up() -> None:
    from tests.sinks.servers import free_port

    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        receiver(RedisStreamSink(f"redis://127.0.0.1:{free_port()}/0", "s"))


def test_a_key_that_is_not_a_stream_stops_start_up(stream_redis: RedisServer) -> None:
    name = fresh_name()
    redis.Redis.from_url(stream_redis.url).set(name, "x")
    with pytest.raises(ConfigurationError, match="holds a string, not a stream"):
        RedisStreamSink(stream_redis.url, name).check()


def test_a_user_who_may_not_xadd_stops_start_up_and_nothing_is_appended(
    stream_redis: RedisServer,
) -> None:
    user, stream = fresh_name("reader"), fresh_name()
    admin = redis.Redis.from_url(stream_redis.url)
    admin.acl_setuser(
        user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-xadd"]
    )
    url = stream_redis.url.replace("redis://", f"redis://{user}:pw@")
    with pytest.raises(ConfigurationError, match="may not XADD"):
        RedisStreamSink(url, stream).check()
    admin.acl_setuser(user, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all"])
    RedisStreamSink(url, stream).check()
    assert admin.exists(stream) == 0  # the check appended nothing


def test_a_redis_without_an_append_only_file_is_refused_unless_accepted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path)  # appendonly no
    server.start()
    try:
        with pytest.raises(ConfigurationError, match="appendonly no"):
            RedisStreamSink(server.url, "s").check()
        caplog.set_level(logging.WARNING, "hubsig")
        RedisStreamSink(server.url, "s", durable=False).check()
        assert "in memory only" in caplog.text
    finally:
        server.stop()


def test_a_worker_whose_redis_is_unreachable_stops_at_start_up(tmp_path: Path) -> None:
    from tests.sinks.servers import free_port

    with pytest.raises(ConfigurationError, match="cannot reach Redis"):
        RedisStreamWorker(
            f"redis://127.0.0.1:{free_port()}/0", "s", "g",
            store=SQLiteStore(tmp_path / "w.db"), handler=lambda event: None,
        )  # fmt: skip


def test_trimming_removes_only_what_every_group_is_done_with(
    stream_redis: RedisServer, tmp_path: Path
) -> None:
    stream = fresh_name()
    with receiver(RedisStreamSink(stream_redis.url, stream)) as client:
        assert post(client, signed(4)) == 200
    worker, _ = _recording_worker(stream_redis.url, stream, tmp_path)
    client_: Any = redis.Redis.from_url(stream_redis.url)
    client_.xgroup_create(stream, "auditors", id="0")  # a second group, which reads slowly
    client_.xreadgroup("auditors", "slow", {stream: ">"}, count=1)  # one pending, three unread
    worker.run_once()
    assert worker.trim() == 0  # the auditors still need all four
    client_.xack(stream, "auditors", client_.xrange(stream)[0][0])
    assert worker.trim() == 1  # acknowledged by both groups: gone
    client_.xreadgroup("auditors", "slow", {stream: ">"})
    client_.xack(stream, "auditors", *[entry_id for entry_id, _ in client_.xrange(stream)])
    assert worker.trim() == 3
    assert client_.xlen(stream) == 0
