"""A store in one SQLite file (standard library): survives restarts; ``hubsig serve`` uses it."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hubsig._dedupe import Claim, ClaimLost, Claims, StoreUnavailable
from hubsig.errors import ConfigurationError
from hubsig.stores._lending import Lent, claims_of, committed_by_handler, lent_connection

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["SQLiteStore"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS hubsig_events (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    expires REAL NOT NULL,
    token TEXT
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS hubsig_events_by_expiry ON hubsig_events (expires)"
_PRUNE = """
DELETE FROM hubsig_events WHERE key IN (
    SELECT key FROM hubsig_events
    WHERE expires <= ? AND (state = 'done' OR expires <= ?) LIMIT ?
)
"""
CLAIM_MEMORY = 24 * 3600.0
"""How long an expired, unsettled claim is kept, so the event's next claim is RECLAIMED."""
_IDLE_CONNECTIONS = 8


class SQLiteStore:
    """Claims in one transaction per call, so concurrent threads and processes never both win.

    Uses wall-clock time (``time.time``) because its memories outlive the
    process. Each claim also prunes a small batch of expired rows (processed
    events past their retention, unsettled claims a day past their lease),
    so no call holds the write lock for long.

    ``transaction(delivery)`` lends a handler a connection in an open
    transaction (``BEGIN IMMEDIATE``); its writes commit together with its
    events' completion, or not at all. SQLite has one writer at a time, so
    while that transaction is open every other claim on the file waits:
    keep such handlers short.
    """

    blocking = True
    """Its calls wait on I/O: async receivers run them in a worker thread."""

    lends_the_write_lock = True
    """A lent transaction holds SQLite's one write lock: async receivers end it on the event
    loop (a commit is quick), never behind worker threads that wait for that lock."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = _open(self.path)
        self._idle: list[sqlite3.Connection] = []
        self._idle_lock = threading.Lock()

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        now = self._clock()
        found = []
        with self._transaction() as db:
            for key in keys:
                row = db.execute(
                    "SELECT state, expires FROM hubsig_events WHERE key = ?", (key,)
                ).fetchone()
                if row is not None and row[1] > now:
                    found.append(Claim.DONE if row[0] == "done" else Claim.BUSY)
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO hubsig_events VALUES (?, 'claimed', ?, ?)",
                    (key, now + lease, token),
                )
                stale = row is not None and row[0] == "claimed"
                found.append(Claim.RECLAIMED if stale else Claim.CLAIMED)
            db.execute(_PRUNE, (now, now - CLAIM_MEMORY, 64 + 2 * len(keys)))
        return found

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        with self._transaction() as db:
            self._mark_done(db, keys, retention, token)

    def _mark_done(
        self, db: sqlite3.Connection, keys: Sequence[str], retention: float, token: str
    ) -> int:
        """Mark ``keys`` done unless another attempt holds a live claim; how many were marked."""
        now = self._clock()
        marked = 0
        for key in keys:
            # Not over a live claim another worker took since: that one is theirs.
            cursor = db.execute(
                "INSERT OR REPLACE INTO hubsig_events SELECT ?, 'done', ?, NULL "
                "WHERE NOT EXISTS (SELECT 1 FROM hubsig_events WHERE key = ? "
                "AND state = 'claimed' AND token IS NOT ? AND expires > ?)",
                (key, now + retention, key, token, now),
            )
            marked += cursor.rowcount
        return marked

    def release(self, keys: Sequence[str], token: str) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM hubsig_events WHERE key = ? AND state = 'claimed' AND token = ?",
                [(key, token) for key in keys],
            )

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        until = self._clock() + lease
        with self._transaction() as db:
            db.executemany(
                "UPDATE hubsig_events SET expires = ? WHERE key = ? AND state = 'claimed' "
                "AND token = ?",
                [(until, key, token) for key in keys],
            )

    def check(self) -> None:
        """Fail start-up with ``ConfigurationError`` if the file cannot be written."""
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM hubsig_events WHERE key = ''")
        except StoreUnavailable as error:
            raise ConfigurationError(
                f"the SQLite store {self.path} is not writable: {error}"
            ) from None

    def transaction(self, delivery: Delivery) -> sqlite3.Connection:
        """A connection in the transaction that will mark ``delivery``'s events done.

        Write with it and do not commit: hubsig commits when the handler
        returns successfully (with the events marked done) and rolls back
        when it fails, so a crash at any instant leaves both or neither.
        Asked again for the same delivery, it returns the same connection.
        """
        claims = claims_of(delivery, self)
        if claims.transaction is not None:
            lent: sqlite3.Connection = lent_connection(claims, self)
            return lent
        if str(self.path) == ":memory:":
            raise ConfigurationError(
                "an in-memory SQLiteStore cannot lend a transaction (another connection would "
                "open another database): give it a file"
            )
        if _on_an_event_loop():
            raise ConfigurationError(
                "SQLiteStore.transaction() in async code would block the event loop on the "
                "file's write lock: use a sync handler (it runs in a thread) or an "
                "AsyncPostgresStore"
            )
        db = self._borrow()
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self._give_back(db, broken=True)
            raise StoreUnavailable(f"the SQLite store is unavailable: {error}") from None
        claims.transaction = Lent(self, db)
        return db

    def commit_transaction(self, claims: Claims, retention: float) -> None:
        db: sqlite3.Connection = lent_connection(claims, self)
        try:
            if not db.in_transaction:
                committed_by_handler()
                db.execute("BEGIN IMMEDIATE")
            if self._mark_own_done(db, claims, retention) < len(claims.keys):
                db.execute("ROLLBACK")
                raise ClaimLost("another attempt holds these events")
            db.execute("COMMIT")
        except sqlite3.Error as error:
            _roll_back(db)
            self._give_back(db, broken=True)
            claims.transaction = None
            raise StoreUnavailable(f"the SQLite store is unavailable: {error}") from None
        except BaseException:
            self._give_back(db, broken=False)
            claims.transaction = None
            raise
        self._give_back(db, broken=False)
        claims.transaction = None

    def _mark_own_done(self, db: sqlite3.Connection, claims: Claims, retention: float) -> int:
        """Mark done the keys this attempt still claims (however late); how many it did."""
        until = self._clock() + retention
        marked = 0
        for key in claims.keys:
            marked += db.execute(
                "UPDATE hubsig_events SET state = 'done', expires = ?, token = NULL "
                "WHERE key = ? AND state = 'claimed' AND token = ?",
                (until, key, claims.token),
            ).rowcount
        return marked

    def abort_transaction(self, claims: Claims) -> None:
        """Roll back and close the connection: a handler cancelled while its thread still
        runs must find it closed, not back in the pool under another delivery."""
        db: sqlite3.Connection = lent_connection(claims, self)
        claims.transaction = None
        _roll_back(db)
        self._give_back(db, broken=True)

    def _borrow(self) -> sqlite3.Connection:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        db = _open(self.path)
        # Python opens a transaction before any write made outside one: so writes that come
        # after a rollback (a cancelled handler's thread) never commit on their own.
        db.isolation_level = "DEFERRED"
        return db

    def _give_back(self, db: sqlite3.Connection, broken: bool) -> None:
        with self._idle_lock:
            if not broken and not db.in_transaction and len(self._idle) < _IDLE_CONNECTIONS:
                self._idle.append(db)
                return
        db.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._idle_lock:
            for db in self._idle:
                db.close()
            self._idle.clear()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


def _on_an_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")  # not imported: no loop can be running
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _roll_back(db: sqlite3.Connection) -> None:
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the connection is dropped; SQLite rolls back what it never committed


def _open(path: Path, patience: float = 10.0) -> sqlite3.Connection:
    """Connect, switch to WAL and create the table, retrying while another process does.

    Workers that start together on a fresh file race to set it up, and
    SQLite answers the losers "database is locked" without waiting.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(_SCHEMA)
                db.execute(_INDEX)
                columns = {row[1] for row in db.execute("PRAGMA table_info(hubsig_events)")}
                if "token" not in columns:  # a file from before claims were fenced
                    db.execute("ALTER TABLE hubsig_events ADD COLUMN token TEXT")
            except sqlite3.Error:
                db.close()
                raise
            return db
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise StoreUnavailable(f"cannot open the SQLite store: {error}") from None
            time.sleep(0.05)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot open the SQLite store: {error}") from None


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` under the store's lock; SQLite errors become
    ``StoreUnavailable`` so the receiver answers 500 and the sender retries."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            self._lock.release()
            raise StoreUnavailable(f"the SQLite store is unavailable: {error}") from None
        return self._db

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            if kind is None:
                self._db.execute("COMMIT")
            else:
                self._db.execute("ROLLBACK")
        except sqlite3.Error as failure:
            raise StoreUnavailable(f"the SQLite store is unavailable: {failure}") from None
        finally:
            self._lock.release()
        if isinstance(error, sqlite3.Error):
            raise StoreUnavailable(f"the SQLite store is unavailable: {error}") from None
