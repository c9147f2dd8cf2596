"""``hubsig.sinks.outbox``: events committed with their claims' completion, relayed to a
real engine afterwards; an engine outage costs the sender nothing and loses nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import redis

from hubsig.errors import ConfigurationError
from hubsig.sinks.outbox import OutboxRelay, OutboxSink
from hubsig.sinks.redis_streams import RedisStreamSink
from hubsig.stores import MemoryStore, SQLiteStore
from tests.redis_server import RedisServer
from tests.sinks.conftest import fresh_name, post, receiver, signed
from tests.sinks.servers import durable_redis


def _stream_keys(url: str, stream: str) -> list[str]:
    entries: Any = redis.Redis.from_url(url).xrange(stream)
    return [fields[b"key"].decode() for _, fields in entries]


def test_events_commit_into_the_outbox_and_the_relay_sends_each_once(
    stream_redis: RedisServer, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "receiver.db")
    first, second = signed(3), signed(2)
    with receiver(OutboxSink(store), store) as client:
        assert [post(client, r) for r in (first, second, first)] == [200, 200, 200]
    stream = fresh_name()
    relay = OutboxRelay(store, RedisStreamSink(stream_redis.url, stream), batch=2)
    assert relay.pending() == 5
    while relay.run_once():
        pass
    keys = _stream_keys(stream_redis.url, stream)
    assert len(keys) == 5 == len(set(keys))
    assert relay.pending() == 0


def test_with_the_engine_down_the_sender_gets_200_and_the_rows_wait(tmp_path: Path) -> None:
    server = durable_redis(tmp_path)
    server.start()
    stream = fresh_name()
    store = SQLiteStore(tmp_path / "receiver.db")
    relay = OutboxRelay(store, RedisStreamSink(server.url, stream))
    server.stop()  # the engine is down from the first delivery on
    try:
        with receiver(OutboxSink(store), store) as client:
            assert [post(client, signed(2)) for _ in range(3)] == [200, 200, 200]
        with pytest.raises(Exception, match="Redis did not take the events"):
            relay.run_once()
        assert relay.pending() == 6  # nothing lost, nothing removed
        server.start()
        while relay.run_once():
            pass
        assert len(set(_stream_keys(server.url, stream))) == 6
        assert relay.pending() == 0
    finally:
        server.stop()


def test_the_rows_roll_back_with_a_failed_completion(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "receiver.db")
    outbox = OutboxSink(store)

    class FailsAfterWriting:
        """Writes the rows, then fails: the flow rolls the transaction back (503)."""

        blocking = True

        def check(self) -> None:
            outbox.check()

        def publish(self, delivery: Any) -> None:
            outbox.publish(delivery)
            raise RuntimeError("after the rows were written")

    with receiver(FailsAfterWriting(), store) as client:
        assert post(client, signed(2)) == 503
    with sqlite3.connect(tmp_path / "receiver.db") as db:
        assert db.execute("SELECT count(*) FROM hubsig_outbox").fetchone() == (0,)


def test_an_outbox_needs_a_store_that_lends_transactions(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SQLiteStore or a PostgresStore"):
        OutboxSink(MemoryStore())
    with pytest.raises(ConfigurationError, match="not a plain SQL table name"):
        OutboxSink(SQLiteStore(tmp_path / "r.db"), table="x; DROP TABLE y")
    with pytest.raises(ConfigurationError, match="has send"):
        OutboxRelay(SQLiteStore(tmp_path / "r.db"), object())  # type: ignore[arg-type]


def test_postgres_outbox_rows_commit_with_the_completion(
    postgres_url: str, stream_redis: RedisServer
) -> None:
    from hubsig.stores.postgres import PostgresStore
    from tests.conftest import fresh_table

    store = PostgresStore(postgres_url, table=fresh_table())
    table = fresh_table()
    request = signed(3)
    with receiver(OutboxSink(store, table=table), store) as client:
        assert [post(client, request) for _ in range(2)] == [200, 200]
    stream = fresh_name()
    relays = [OutboxRelay(store, RedisStreamSink(stream_redis.url, stream), table=table, batch=1)]
    relays.append(OutboxRelay(store, RedisStreamSink(stream_redis.url, stream), table=table))
    assert relays[0].pending() == 3
    while sum(relay.run_once() for relay in relays):
        pass
    assert sorted(_stream_keys(stream_redis.url, stream)) == sorted(
        set(_stream_keys(stream_redis.url, stream))
    )
    assert len(_stream_keys(stream_redis.url, stream)) == 3
    store.close()
