"""``hubsig serve``'s crash-safe sink: a journal in the store file, exported to JSON Lines.

The handler writes each event's line into the ``hubsig_journal`` table in
the transaction the ``SQLiteStore`` lends it, so the line commits together
with the event's completion, or not at all. ``JournalExport`` then appends
committed lines to the JSON Lines file and records in the store how far it
got (``hubsig_journal_export``: the last row exported, and the file's size
just after it). The mark, not the file, says what was exported: a file
renamed away (logrotate) is followed by a new one holding only new lines.

A process killed between the write and the mark leaves lines past the
mark; the next export finds them at the file's end, checks them against
the journal and adopts them (a partial last line is cut off and written
again whole), so nothing is written twice and nothing a 200 acknowledged is
missing (each worker exports before it answers 200). Exported rows are
pruned once they are older than the store's retention; the last one is
kept, to recognise the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from hubsig._dedupe import DedupePolicy
from hubsig._delivery import Delivery
from hubsig.cli.event_log import json_line, records
from hubsig.errors import JournalMismatch

__all__ = ["JOURNAL_SCHEMA", "JournalExport", "JournalMismatch", "journal"]

logger = logging.getLogger("hubsig")

JOURNAL_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hubsig_journal (row INTEGER PRIMARY KEY, line TEXT, at REAL)"
)
_MARK_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hubsig_journal_export "
    "(one INTEGER PRIMARY KEY CHECK (one = 1), row INTEGER NOT NULL, size INTEGER NOT NULL)"
)
_PRUNE = (
    "DELETE FROM hubsig_journal WHERE row IN "
    "(SELECT row FROM hubsig_journal WHERE row < ? ORDER BY row LIMIT ?) "
    "AND (at IS NULL OR at < ?)"
)
_BATCH = 10_000
_CHUNK = 1024 * 1024
_PRUNE_AT_LEAST = 256
_MOST_UNMARKED = 64 * 1024 * 1024
"""More bytes past the mark than a killed export could have written: not this journal's."""


def journal(db: sqlite3.Connection, delivery: Delivery) -> int:
    """Add a line per event of ``delivery`` in the transaction ``db`` holds; how many."""
    now = time.time()
    lines = [(json_line(record), now) for record in records(delivery)]
    db.executemany("INSERT INTO hubsig_journal (line, at) VALUES (?, ?)", lines)
    return len(lines)


class JournalExport:
    """Appends the journal's committed lines that were never exported, to ``out``.

    Safe across threads and processes: an export holds a thread lock and an
    exclusive ``flock`` on ``out``'s folder (which alone does not exclude
    threads sharing the descriptor; the folder, unlike the file, stays the
    same when ``out`` is renamed) while it reconciles, appends and marks.
    When ``out`` is renamed away or deleted, the next export creates it again.
    ``retention``: seconds an exported row is kept (the store's, by default).
    """

    def __init__(
        self, store_path: str | Path, out: str | Path, retention: float | None = None
    ) -> None:
        self.out = Path(out)
        self.retention = DedupePolicy().retention if retention is None else retention
        self._db = sqlite3.connect(
            store_path, timeout=30, isolation_level=None, check_same_thread=False
        )
        try:
            _create_tables(self._db)
            self._folder = os.open(self.out.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                self._fd = os.open(self.out, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except BaseException:
                os.close(self._folder)
                raise
        except BaseException:
            self._db.close()
            raise
        self._known: tuple[int, int] | None = None  # (row, size) of this export's last mark
        self._lock = threading.Lock()

    def run(self) -> int:
        """Export what is missing; how many lines were appended.

        Raises ``OSError`` when the disk refuses the write, after cutting the
        file back to its last whole line; ``JournalMismatch`` when ``out``
        holds lines the journal did not write.
        """
        with self._lock:
            fcntl.flock(self._folder, fcntl.LOCK_EX)
            try:
                self._follow_rename()
                row, size = self._reconcile()
                exported = 0
                while True:
                    rows = self._db.execute(
                        "SELECT row, line FROM hubsig_journal WHERE row > ? ORDER BY row LIMIT ?",
                        (row, _BATCH),
                    ).fetchall()
                    if not rows:
                        return exported
                    data = "".join(line + "\n" for _, line in rows).encode("utf-8")
                    self._append(data, size)
                    row, size = rows[-1][0], size + len(data)
                    self._mark(row, size, prune=2 * len(rows))
                    exported += len(rows)
                    if len(rows) < _BATCH:
                        return exported
            finally:
                fcntl.flock(self._folder, fcntl.LOCK_UN)

    def close(self) -> None:
        self._db.close()
        os.close(self._fd)
        os.close(self._folder)

    def _follow_rename(self) -> None:
        """Reopen ``out`` by its name when the file was renamed away or deleted (rotation)."""
        try:
            named = os.stat(self.out)
        except FileNotFoundError:
            named = None
        held = os.fstat(self._fd)
        if named is None or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            fd = os.open(self.out, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(self._fd)
            self._fd = fd

    def _reconcile(self) -> tuple[int, int]:
        """The last row in ``out`` and the file's size after it, adopting the lines an
        export killed before its mark wrote; cuts off a partial last line."""
        size = os.fstat(self._fd).st_size
        mark = self._db.execute("SELECT row, size FROM hubsig_journal_export").fetchone()
        if mark is None:
            return self._first_mark(size)
        row, marked_size = mark
        if (row, marked_size) == self._known and size == marked_size:
            return row, marked_size
        start = marked_size if size >= marked_size and self._ends_at(row, marked_size) else 0
        whole = self._whole_tail(start, size)
        adopted = whole.count(b"\n")
        if adopted:
            pending = self._db.execute(
                "SELECT row, line FROM hubsig_journal WHERE row > ? ORDER BY row LIMIT ?",
                (row, adopted),
            ).fetchall()
            if "".join(line + "\n" for _, line in pending).encode("utf-8") != whole:
                raise JournalMismatch(
                    f"{self.out} holds lines the store's journal did not write: it was "
                    f"written with another --store file, or by another program"
                )
            row = pending[-1][0]
            logger.info("%d lines a stopped export wrote to %s are kept", adopted, self.out)
        if (row, start + len(whole)) != (mark[0], mark[1]):
            self._mark(row, start + len(whole), prune=0)
        return row, start + len(whole)

    def _first_mark(self, size: int) -> tuple[int, int]:
        """No mark yet (a new store, or one from before marks): line *n* of ``out`` must be
        journal row *n*, as exports without marks wrote them."""
        lines, whole = 0, 0
        for offset in range(0, size, _CHUNK):
            chunk = os.pread(self._fd, min(_CHUNK, size - offset), offset)
            if b"\n" in chunk:
                lines += chunk.count(b"\n")
                whole = offset + chunk.rfind(b"\n") + 1
        self._whole_tail(whole, size)  # cuts a partial last line
        last = self._db.execute("SELECT max(row) FROM hubsig_journal").fetchone()[0] or 0
        if lines > last:
            raise JournalMismatch(
                f"{self.out} has {lines} lines but the store's journal only {last}: "
                "it was written with another --store file"
            )
        if lines and not self._ends_at(lines, whole):
            raise JournalMismatch(
                f"{self.out} line {lines} is not the store's journal row {lines}: it was "
                "written with another --store file"
            )
        self._mark(lines, whole, prune=0)
        return lines, whole

    def _ends_at(self, row: int, size: int) -> bool:
        """Whether ``out`` holds journal row ``row``'s line just before byte ``size``."""
        if row == 0:
            return size == 0
        found = self._db.execute("SELECT line FROM hubsig_journal WHERE row = ?", (row,)).fetchone()
        if found is None:
            return False
        line = (found[0] + "\n").encode("utf-8")
        return size >= len(line) and os.pread(self._fd, len(line), size - len(line)) == line

    def _whole_tail(self, start: int, size: int) -> bytes:
        """The whole lines from byte ``start`` on; a partial last one (a crash's) is cut off."""
        if size - start > _MOST_UNMARKED:
            raise JournalMismatch(
                f"{self.out} has {size - start} bytes the store's journal did not write: it "
                "was written with another --store file, or by another program"
            )
        tail = os.pread(self._fd, size - start, start) if size > start else b""
        whole = tail[: tail.rfind(b"\n") + 1]
        if len(whole) < len(tail):
            os.ftruncate(self._fd, start + len(whole))
            logger.warning("cut a partial last line off %s (a write was interrupted)", self.out)
        return whole

    def _append(self, data: bytes, size: int) -> None:
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"wrote {written} of {len(data)} bytes to {self.out}")
        except OSError:
            os.ftruncate(self._fd, size)  # no partial line left behind
            raise

    def _mark(self, row: int, size: int, prune: int) -> None:
        """Record that ``out`` holds every row up to ``row`` in its first ``size`` bytes, and
        prune up to ``prune`` (at least 256) exported rows past the retention."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO hubsig_journal_export (one, row, size) VALUES (1, ?, ?)",
                (row, size),
            )
            cutoff = time.time() - self.retention
            oldest = self._db.execute("SELECT at FROM hubsig_journal ORDER BY row LIMIT 1")
            at = oldest.fetchone()
            if at is not None and (at[0] is None or at[0] < cutoff):  # else nothing is due
                self._db.execute(_PRUNE, (row, max(prune, _PRUNE_AT_LEAST), cutoff))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._known = (row, size)


def _create_tables(db: sqlite3.Connection) -> None:
    """The journal and its mark; a journal from before ``at`` gets the column."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(JOURNAL_SCHEMA)
        db.execute(_MARK_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(hubsig_journal)")}
        if "at" not in columns:
            db.execute("ALTER TABLE hubsig_journal ADD COLUMN at REAL")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
