"""The SQLite store: it remembers across restarts, upgrades old files, prunes in small batches,
and refuses transactions where they cannot work."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import hubsig
from hubsig import EventsPayload
from hubsig._dedupe import Claim
from hubsig.errors import ConfigurationError
from hubsig.stores import SQLiteStore
from hubsig.testing import make_events, signed_request
from tests.harness import Sent, call_asgi, call_wsgi
from tests.stores import SECRET, signed
from tests.test_once import _claims_for, _lend


def test_sqlite_remembers_across_a_restart(tmp_path: Path) -> None:
    payload = make_events(2)

    processed = []
    for _ in range(2):  # the second endpoint is the restarted receiver, same file
        calls: list[EventsPayload] = []
        store = SQLiteStore(tmp_path / "events.db")
        endpoint = hubsig.webhook(secret=SECRET, store=store)(calls.append)
        request = signed_request(payload, SECRET)
        status, _, _ = call_wsgi(endpoint.wsgi, Sent([request.body], dict(request.headers)))
        assert status == 200
        store.close()
        processed.append(len(calls))
    assert processed == [1, 0]


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


def test_an_expired_claim_is_remembered_through_pruning(tmp_path: Path) -> None:
    """SQLite prunes processed events past retention, but keeps an expired claim a day."""
    clock = [1000.0]
    store = SQLiteStore(tmp_path / "e.db", clock=lambda: clock[0])
    store.claim(["crashed"], 60, "dead")
    store.claim(["other"], 60, "A")
    store.complete(["other"], 10, "A")
    clock[0] += 3600
    store.claim(["unrelated"], 60, "B")  # prunes what it may
    assert store.claim(["other"], 60, "C") == [Claim.CLAIMED]  # forgotten after retention
    assert store.claim(["crashed"], 60, "C") == [Claim.RECLAIMED]
    store.close()


def test_sqlite_prunes_in_small_batches(tmp_path: Path) -> None:
    clock = [1000.0]
    store = SQLiteStore(tmp_path / "e.db", clock=lambda: clock[0])
    keys = [f"k{i}" for i in range(5000)]
    for start in range(0, 5000, 500):
        batch = keys[start : start + 500]
        store.claim(batch, 60, "A")
        store.complete(batch, 10, "A")
    clock[0] += 100
    db = sqlite3.connect(tmp_path / "e.db")
    count = db.execute("SELECT count(*) FROM hubsig_events").fetchone()[0]
    store.claim(["new"], 60, "B")
    after_one = db.execute("SELECT count(*) FROM hubsig_events").fetchone()[0]
    assert count - after_one + 1 <= 66, "one claim prunes a small batch, not the whole table"
    assert after_one < count
    for i in range(200):
        store.claim([f"n{i}"], 60, "B")
    assert db.execute("SELECT count(*) FROM hubsig_events WHERE key LIKE 'k%'").fetchone()[0] == 0
    db.close()
    store.close()


def test_sqlite_transactions_are_refused_on_an_event_loop_and_in_memory(tmp_path: Path) -> None:
    errors: list[str] = []
    store = SQLiteStore(tmp_path / "events.db")

    async def on_the_loop(payload: EventsPayload, delivery: hubsig.Delivery) -> None:
        try:
            store.transaction(delivery)
        except ConfigurationError as error:
            errors.append(str(error))
            raise

    endpoint = hubsig.webhook(secret=SECRET, store=store)(on_the_loop)
    assert asyncio.run(call_asgi(endpoint, signed(make_events(1))))[0] == 500
    assert "block the event loop" in errors[0]
    memory = SQLiteStore(":memory:")
    with pytest.raises(ConfigurationError, match="in-memory"):
        _lend(memory, _claims_for(memory))
