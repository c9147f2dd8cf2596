"""How long a claim holds SQLite's write lock as it prunes: ``python -m benchmarks.sqlite_pruning``.

Fills a store file with 2,000,000 processed events past their retention,
then times 200 claims of 18 events each (every claim also prunes a small
batch of expired rows by the expiry index). Prints the median and the
longest claim.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

from hubsig.stores import SQLiteStore


def run(rows: int = 2_000_000, claims: int = 200) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="hubsig-prune-") as folder:
        path = Path(folder) / "events.db"
        clock = [1000.0]
        store = SQLiteStore(path, clock=lambda: clock[0])
        db = sqlite3.connect(path)
        expired = ((f"k{i}", 1500.0) for i in range(rows))
        db.executemany("INSERT INTO hubsig_events VALUES (?, 'done', ?, NULL)", expired)
        db.commit()
        db.close()
        clock[0] = 2000.0  # every row is past its retention
        times = []
        for i in range(claims):
            started = time.perf_counter()
            store.claim([f"new{i}:{j}" for j in range(18)], 60, "token")
            times.append(time.perf_counter() - started)
        store.close()
    times.sort()
    return times[len(times) // 2], times[-1]


if __name__ == "__main__":
    median, longest = run()
    print(
        f"claim of 18 events over 2,000,000 expired rows: median {median * 1e3:.2f} ms, "
        f"longest {longest * 1e3:.2f} ms"
    )
