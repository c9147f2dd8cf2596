"""A store in one SQLite file (standard library): survives restarts; ``hubsig serve`` uses it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hubsig._dedupe import Claim, StoreUnavailable

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hubsig_events (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    expires REAL NOT NULL,
    token TEXT
)
"""


class SQLiteStore:
    """Claims in one transaction per call, so concurrent threads and processes never both win.

    Uses wall-clock time (``time.time``) because its memories outlive the
    process; expired rows are pruned as new claims arrive.
    """

    blocking = True
    """Its calls wait on I/O: async receivers run them in a worker thread."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = _open(self.path)
        self._claims_since_prune = 0

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
                found.append(Claim.CLAIMED)
            self._claims_since_prune += 1
            if self._claims_since_prune >= 1000:
                db.execute("DELETE FROM hubsig_events WHERE expires <= ?", (now,))
                self._claims_since_prune = 0
        return found

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        now = self._clock()
        with self._transaction() as db:
            for key in keys:
                # Not over a live claim another worker took since: that one is theirs.
                db.execute(
                    "INSERT OR REPLACE INTO hubsig_events SELECT ?, 'done', ?, NULL "
                    "WHERE NOT EXISTS (SELECT 1 FROM hubsig_events WHERE key = ? "
                    "AND state = 'claimed' AND token IS NOT ? AND expires > ?)",
                    (key, now + retention, key, token, now),
                )

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

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


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
