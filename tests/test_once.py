"""Each event once across crashes: redelivery marks, lent transactions, start-up checks.

The crash tests kill a real process with SIGKILL in the middle of a handler,
after it wrote, and then deliver again from a fresh process: the write must
be gone with the crash and done exactly once by the retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import hubsig
import hubsig.wsgi
from hubsig import ConfigurationError, EventsPayload
from hubsig._dedupe import Claim, event_keys, unique_keys
from hubsig.stores import MemoryStore, SQLiteStore
from hubsig.testing import make_event, make_events
from tests.adapters import asgi_middleware, wsgi_middleware
from tests.conftest import fresh_table
from tests.harness import Sent, call_asgi, call_wsgi

SECRET = "once-secret"


def signed(payload: EventsPayload) -> Sent:
    body = payload.to_json()
    return Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})


def keys_of(sent: Sent) -> list[str]:
    payload = hubsig.parse_events(sent.body)
    return unique_keys(event_keys(payload, sent.body))


# (redelivery marks, in every store: tests/stores/test_contract.py)


# --- lent transactions: the handler's writes commit with the completion -------------------


def _transactional_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "events.db")
    from hubsig.stores.postgres import PostgresStore

    store = PostgresStore(request.getfixturevalue("postgres_url"), table=fresh_table())
    store.check()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def transactional(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    store = _transactional_stores(request, tmp_path)
    yield store
    store.close()


def _orders(store: Any) -> list[str]:
    """Every entity id the handlers wrote, as committed."""
    from hubsig.stores.sqlite import SQLiteStore as Lite

    if isinstance(store, Lite):
        db = sqlite3.connect(store.path)
        try:
            db.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT)")
            return [row[0] for row in db.execute("SELECT id FROM orders ORDER BY rowid")]
        finally:
            db.close()
    import psycopg

    with psycopg.connect(store._conninfo, autocommit=True) as connection:
        table = store._sql.table + "_orders"
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (id text)")
        return [row[0] for row in connection.execute(f"SELECT id FROM {table}").fetchall()]


def _write(store: Any, delivery: hubsig.Delivery) -> None:
    """A handler's own writes, in the transaction the store lends it."""
    connection = store.transaction(delivery)
    from hubsig.stores.sqlite import SQLiteStore as Lite

    table = "orders" if isinstance(store, Lite) else store._sql.table + "_orders"
    marker = "?" if isinstance(store, Lite) else "%s"
    for entity_id in delivery.payload.entity_ids:
        connection.execute(f"INSERT INTO {table} (id) VALUES ({marker})", (entity_id,))


def test_a_handlers_writes_commit_with_its_events_completion(transactional: Any) -> None:
    _orders(transactional)  # creates the table
    endpoint = hubsig.webhook(secret=SECRET, store=transactional)(
        lambda payload, delivery: _write(transactional, delivery)
    )
    payload = make_events(3)
    sent = signed(payload)
    assert call_wsgi(endpoint.wsgi, sent)[0] == 200
    assert call_wsgi(endpoint.wsgi, sent)[0] == 200  # the replay: acknowledged, not rewritten
    assert _orders(transactional) == list(payload.entity_ids)


def test_a_failing_handlers_writes_are_rolled_back_and_the_retry_writes_once(
    transactional: Any,
) -> None:
    _orders(transactional)
    tries: list[int] = []

    def fails_after_writing(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        _write(transactional, delivery)
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("after the writes")

    endpoint = hubsig.webhook(secret=SECRET, store=transactional)(fails_after_writing)
    payload = make_events(2)
    assert call_wsgi(endpoint.wsgi, signed(payload))[0] == 500
    assert _orders(transactional) == []
    assert call_wsgi(endpoint.wsgi, signed(payload))[0] == 200
    assert _orders(transactional) == list(payload.entity_ids)


def test_a_transaction_whose_claims_were_taken_meanwhile_is_rolled_back(
    transactional: Any,
) -> None:
    """The stale worker's lease ran out and another attempt took the events: the stale
    worker's commit is refused (409), and its writes never land."""
    _orders(transactional)

    def overtaken(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        claims = delivery.claims
        assert claims is not None
        transactional.release(claims.keys, claims.token)  # as if the lease had run out
        assert transactional.claim(list(claims.keys), 60, "another") == [Claim.CLAIMED] * len(
            claims.keys
        )
        _write(transactional, delivery)

    endpoint = hubsig.webhook(secret=SECRET, store=transactional)(overtaken)
    assert call_wsgi(endpoint.wsgi, signed(make_events(2)))[0] == 409
    assert _orders(transactional) == []


def test_asking_twice_lends_the_same_connection_and_a_delivery_without_claims_is_refused(
    transactional: Any,
) -> None:
    same: list[bool] = []

    def handler(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        same.append(transactional.transaction(delivery) is transactional.transaction(delivery))

    endpoint = hubsig.webhook(secret=SECRET, store=transactional)(handler)
    assert call_wsgi(endpoint.wsgi, signed(make_events(1)))[0] == 200
    assert same == [True]
    unclaimed: list[Exception] = []

    def without_store(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        try:
            transactional.transaction(delivery)
        except ConfigurationError as error:
            unclaimed.append(error)

    plain = hubsig.webhook(secret=SECRET, store=MemoryStore())(without_store)
    assert call_wsgi(plain.wsgi, signed(make_events(1)))[0] == 200
    assert len(unclaimed) == 1


def test_the_async_postgres_store_lends_its_transaction_to_async_handlers(
    postgres_url: str,
) -> None:
    from hubsig.stores.postgres import AsyncPostgresStore

    table = fresh_table()
    store = AsyncPostgresStore(postgres_url, table=table)
    runs: list[str] = []

    async def handler(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        connection = await store.transaction(delivery)
        for entity_id in payload.entity_ids:
            await connection.execute(f"INSERT INTO {table}_orders VALUES (%s)", (entity_id,))
        runs.append("ran")
        if len(runs) == 1:
            raise RuntimeError("after the writes")

    endpoint = hubsig.webhook(secret=SECRET, store=store)(handler)
    payload = make_events(2)

    async def scenario() -> list[int]:
        await store.check()
        import psycopg

        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            await db.execute(f"CREATE TABLE {table}_orders (id text)")
        answers = [(await call_asgi(endpoint, signed(payload)))[0] for _ in range(3)]
        await store.close()
        return answers

    assert asyncio.run(scenario()) == [500, 200, 200]
    import psycopg

    with psycopg.connect(postgres_url) as db:
        rows = db.execute(f"SELECT id FROM {table}_orders").fetchall()
    assert [row[0] for row in rows] == list(payload.entity_ids)
    assert runs == ["ran", "ran"]


CRASHING_RECEIVER = """
import os, signal, sys
import hubsig
from hubsig._dedupe import DedupePolicy
from tests.test_once import SECRET, open_store, write_for

store = open_store(sys.argv[1], sys.argv[2])
crash = sys.argv[3] == "crash"

def handler(payload, delivery):
    write_for(store, delivery)
    print("redelivered" if delivery.redelivered else "first", flush=True)
    if crash:
        os.kill(os.getpid(), signal.SIGKILL)  # after the writes, before the commit

endpoint = hubsig.webhook(secret=SECRET, store=store, dedupe=DedupePolicy(lease=0.3))(handler)
body = sys.stdin.buffer.read()
from tests.harness import Sent, call_wsgi
status = call_wsgi(endpoint.wsgi, Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)}))[0]
print(status, flush=True)
"""


def open_store(kind: str, where: str) -> Any:
    """The store a crashing receiver process opens (``where``: a file, or URL#table)."""
    if kind == "sqlite":
        return SQLiteStore(where)
    from hubsig.stores.postgres import PostgresStore

    url, table = where.split("#")
    return PostgresStore(url, table=table)


def write_for(store: Any, delivery: hubsig.Delivery) -> None:
    _write(store, delivery)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_after_the_handler_wrote_leaves_nothing_and_the_retry_writes_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        where = str(tmp_path / "events.db")
    else:
        where = f"{request.getfixturevalue('postgres_url')}#{fresh_table()}"
    store = open_store(kind, where)
    store.check()
    _orders(store)
    payload = make_events(3)

    def receive(mode: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", CRASHING_RECEIVER, kind, where, mode],
            input=payload.to_json(),
            capture_output=True,
            timeout=60,
            cwd=Path(__file__).parent.parent,
        )
        return done.stdout.decode().split()

    assert receive("crash") == ["first"]  # killed before it could answer
    assert _orders(store) == [], "the crashed attempt's writes must not have landed"
    time.sleep(0.4)  # its claims' lease runs out
    assert receive("finish") == ["redelivered", "200"]
    assert receive("finish") == ["200"]  # processed: the replay never reaches the handler
    assert _orders(store) == list(payload.entity_ids)
    store.close()


# --- stores check themselves before the first delivery (each store's own: tests/stores/) ---


def test_an_async_store_that_cannot_work_fails_the_lifespan_start_up_and_each_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from hubsig.stores.redis import AsyncRedisStore

    endpoint = hubsig.webhook(secret=SECRET, store=AsyncRedisStore("redis://127.0.0.1:1/0"))(
        lambda payload: None
    )
    sent_messages: list[dict[str, Any]] = []

    async def lifespan() -> None:
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent_messages.append(message)

        await endpoint({"type": "lifespan"}, receive, send)

    asyncio.run(lifespan())
    assert sent_messages[0]["type"] == "lifespan.startup.failed"
    assert "cannot reach Redis" in sent_messages[0]["message"]
    with caplog.at_level(logging.ERROR, logger="hubsig"):
        status = asyncio.run(call_asgi(endpoint, signed(make_events(1))))[0]
    assert status == 500
    assert "can never work" in caplog.text


# --- one rule for what an app behind the middleware sees ---------------------------------


@pytest.mark.parametrize("run", [asgi_middleware, wsgi_middleware])
def test_an_app_behind_the_middleware_reads_only_the_events_to_process(run: Any) -> None:
    """Like ``@webhook``'s handler, the app sees only the fresh events, in ``payload`` and
    in the body it reads; ``delivery.body`` stays the signed body, and ``arrived_ids``
    lists every id, as ``@webhook``'s 200 does."""
    config = hubsig.WebhookConfig(secret=SECRET, store=MemoryStore())
    old = make_event(id="old-1")
    first = EventsPayload("op-1", (old,))
    events = (make_event(id="new-1"), old, make_event(id="new-2"))
    second = EventsPayload("op-2", events)
    assert run(config, signed(first)).status == 200
    answer = run(config, signed(second))
    assert answer.status == 200
    (seen,) = answer.seen
    read = [event["entity"]["id"] for event in json.loads(seen.body)["data"]["entities"]]
    assert list(seen.delivery.payload.entity_ids) == read == ["new-1", "new-2"]
    assert seen.delivery.body == second.to_json()
    assert seen.delivery.arrived_ids == ("new-1", "old-1", "new-2")
    assert json.loads(seen.body)["operationId"] == "op-2"


# --- hubsig serve's sink: journalled with the completion, exported whole -----------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_twice_under_load_neither_loses_nor_doubles_an_event(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``benchmarks.crashes`` in small: ``hubsig serve`` (SQLite) and a PostgreSQL receiver,
    killed twice while 400 deliveries of 8 events are retried until acknowledged."""
    from benchmarks import crashes

    if kind == "postgres":
        monkeypatch.setenv("HUBSIG_POSTGRES_URL", request.getfixturevalue("postgres_url"))
    figures = crashes.run(kind, kills=2, deliveries=400, between=(0.05, 0.2))
    assert figures["kills"] == 2
    assert (figures["lost"], figures["doubled"]) == (0, 0)
    assert figures["recorded"] == figures["events"] == 3200


def test_an_interrupted_export_is_cut_back_and_written_whole(tmp_path: Path) -> None:
    from hubsig.cli.journal import JOURNAL_SCHEMA, JournalExport, JournalMismatch

    store, out = tmp_path / "events.db", tmp_path / "events.jsonl"
    db = sqlite3.connect(store)
    db.execute(JOURNAL_SCHEMA)
    db.executemany("INSERT INTO hubsig_journal (line) VALUES (?)", [('{"n": 1}',), ('{"n": 2}',)])
    db.commit()
    out.write_bytes(b'{"n": 1}\n{"n": ')  # a writer killed in the middle of line 2
    export = JournalExport(store, out)
    assert export.run() == 1
    assert out.read_bytes() == b'{"n": 1}\n{"n": 2}\n'
    assert export.run() == 0  # nothing twice
    export.close()
    out.write_bytes(b'{"n": 1}\n{"n": 2}\n{"n": 3}\n')  # a file this journal never wrote
    with pytest.raises(JournalMismatch):
        JournalExport(store, out).run()
    db.close()


# --- what an adversarial review found (each failed before its fix) ------------------------


def _lend(store: Any, claims: Any) -> Any:
    """A lent transaction for ``claims``, as a handler gets one (without a whole delivery)."""
    from types import SimpleNamespace

    return store.transaction(SimpleNamespace(claims=claims))


def test_a_stale_attempts_transaction_is_refused_after_another_completed_the_events(
    transactional: Any,
) -> None:
    """A's lease ran out; B reclaimed the event, processed it and completed it. A's late
    commit must be refused and rolled back, not land on top of B's work."""
    from hubsig._dedupe import ClaimLost, Claims

    _orders(transactional)
    assert transactional.claim(["k"], 0.05, "A") == [Claim.CLAIMED]
    stale = Claims(("k",), "A", False, transactional)
    connection = _lend(transactional, stale)
    if not isinstance(transactional, SQLiteStore):
        time.sleep(0.15)
    if isinstance(transactional, SQLiteStore):
        transactional.abort_transaction(stale)  # SQLite: B needs the write lock A holds
        time.sleep(0.15)
        assert transactional.claim(["k"], 60, "B") == [Claim.RECLAIMED]
        transactional.complete(["k"], 3600, "B")
        connection = _lend(transactional, stale)
    else:
        assert transactional.claim(["k"], 60, "B") == [Claim.RECLAIMED]
        transactional.complete(["k"], 3600, "B")
    marker = "?" if isinstance(transactional, SQLiteStore) else "%s"
    table = "orders"
    if not isinstance(transactional, SQLiteStore):
        table = transactional._sql.table + "_orders"
    connection.execute(f"INSERT INTO {table} (id) VALUES ({marker})", ("written by A",))
    with pytest.raises(ClaimLost):
        transactional.commit_transaction(stale, 3600)
    assert _orders(transactional) == []
    assert transactional.claim(["k"], 60, "C") == [Claim.DONE]


@pytest.mark.parametrize("protocol", ["asgi", "wsgi"])
def test_the_middleware_holds_the_apps_200_until_its_transaction_committed(
    protocol: str, tmp_path: Path
) -> None:
    """The app answers 200, but its transaction is refused (its events were taken
    meanwhile): the sender must get 409, not the 200 of work that never committed."""
    store = SQLiteStore(tmp_path / "events.db")
    _orders(store)
    config = hubsig.WebhookConfig(secret=SECRET, store=store)

    def overtaken(delivery: hubsig.Delivery) -> None:
        claims = delivery.claims
        assert claims is not None
        store.release(claims.keys, claims.token)
        store.claim(list(claims.keys), 60, "another")
        _write(store, delivery)

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        overtaken(hubsig.delivery_of(environ))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":{"code":0,"message":"OK"}}']

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.to_thread(overtaken, hubsig.delivery_of(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"status":{"code":0}}'})

    sent = signed(make_events(2))
    if protocol == "asgi":
        from hubsig.asgi import HubSignatureMiddleware as Asgi

        status = asyncio.run(call_asgi(Asgi(asgi_app, config=config), sent))[0]
    else:
        status = call_wsgi(hubsig.wsgi.HubSignatureMiddleware(wsgi_app, config=config), sent)[0]
    assert status == 409
    assert _orders(store) == []
    store.close()


def _claims_for(store: Any) -> Any:
    from hubsig._dedupe import Claims

    return Claims(("k",), "A", False, store)


def test_a_failed_handlers_connection_is_closed_not_lent_again(transactional: Any) -> None:
    """A cancelled handler's thread may still hold its connection: it must find it closed,
    not back in the pool under another delivery."""
    _orders(transactional)
    lent: list[Any] = []

    def fails(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        lent.append(transactional.transaction(delivery))
        raise RuntimeError("fails after borrowing")

    endpoint = hubsig.webhook(secret=SECRET, store=transactional)(fails)
    assert call_wsgi(endpoint.wsgi, signed(make_events(1)))[0] == 500
    (connection,) = lent
    if isinstance(transactional, SQLiteStore):
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")
    else:
        assert connection.closed
