"""``hubsig serve``'s crash-safe sink: a journal in the store file, exported to JSON Lines.

The handler writes each event's line into the ``hubsig_journal`` table in
the transaction the ``SQLiteStore`` lends it, so the line commits together
with the event's completion, or not at all. ``JournalExport`` then appends
committed lines to the JSON Lines file: line *n* of the file is always
journal row *n*, so the file itself says how far the export got. A process
killed mid-write leaves at most a partial last line, which the next export
cuts off and writes again whole; nothing is written twice, and nothing a
200 acknowledged is missing once the export has run (each worker runs it
before it answers 200).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path

from hubsig._event_log import records
from hubsig._receiver import Delivery

__all__ = ["JOURNAL_SCHEMA", "JournalExport", "JournalMismatch", "journal"]

logger = logging.getLogger("hubsig")

JOURNAL_SCHEMA = "CREATE TABLE IF NOT EXISTS hubsig_journal (row INTEGER PRIMARY KEY, line TEXT)"
_BATCH = 10_000


class JournalMismatch(Exception):
    """The JSON Lines file holds lines this journal never wrote (it came from another store)."""


def journal(db: sqlite3.Connection, delivery: Delivery) -> int:
    """Add a line per event of ``delivery`` in the transaction ``db`` holds; how many."""
    lines = [(json.dumps(record, ensure_ascii=False),) for record in records(delivery)]
    db.executemany("INSERT INTO hubsig_journal (line) VALUES (?)", lines)
    return len(lines)


class JournalExport:
    """Appends the journal's committed lines that ``out`` does not have yet.

    Safe across threads and processes: an export holds a thread lock and an
    exclusive ``flock`` on ``out`` (which alone does not exclude threads
    sharing the descriptor) while it reads the file's length and appends.
    """

    def __init__(self, store_path: str | Path, out: str | Path) -> None:
        self.out = Path(out)
        self._db = sqlite3.connect(store_path, timeout=30, check_same_thread=False)
        self._db.execute(JOURNAL_SCHEMA)
        self._fd = os.open(self.out, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._seen = (0, 0)  # (bytes, lines) of the file when last looked at
        self._lock = threading.Lock()

    def run(self) -> int:
        """Export what is missing; how many lines were appended.

        Raises ``OSError`` when the disk refuses the write, after cutting the
        file back to its last whole line; ``JournalMismatch`` when ``out``
        has more lines than the journal.
        """
        with self._lock:
            exported = 0
            while True:
                batch = self._run_once()
                exported += batch
                if batch < _BATCH:
                    return exported

    def _run_once(self) -> int:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            lines = self._whole_lines()
            rows = self._db.execute(
                "SELECT row, line FROM hubsig_journal WHERE row > ? ORDER BY row LIMIT ?",
                (lines, _BATCH),
            ).fetchall()
            if not rows:
                last = self._db.execute("SELECT max(row) FROM hubsig_journal").fetchone()[0]
                if lines > (last or 0):
                    raise JournalMismatch(
                        f"{self.out} has {lines} lines but the store's journal only "
                        f"{last or 0}: it was written with another --store file"
                    )
                return 0
            if rows[0][0] != lines + 1:
                raise JournalMismatch(f"the journal has no row {lines + 1} for {self.out}")
            data = "".join(line + "\n" for _, line in rows).encode("utf-8")
            size = self._seen[0]
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"wrote {written} of {len(data)} bytes to {self.out}")
            except OSError:
                os.ftruncate(self._fd, size)  # no partial line left behind
                raise
            self._seen = (size + len(data), lines + len(rows))
            return len(rows)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _whole_lines(self) -> int:
        """How many whole lines ``out`` has, cutting off a partial last one (a crash's)."""
        size = os.fstat(self._fd).st_size
        known_size, known_lines = self._seen
        if size < known_size:
            known_size, known_lines = 0, 0
        tail = os.pread(self._fd, size - known_size, known_size) if size > known_size else b""
        whole = tail.rfind(b"\n") + 1
        if whole < len(tail):
            os.ftruncate(self._fd, known_size + whole)
            logger.warning("cut a partial last line off %s (a write was interrupted)", self.out)
        self._seen = (known_size + whole, known_lines + tail.count(b"\n", 0, whole))
        return self._seen[1]

    def close(self) -> None:
        self._db.close()
        os.close(self._fd)
