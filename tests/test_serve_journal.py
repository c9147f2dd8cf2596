"""``hubsig serve``'s journal export: rotation, pruning, and what a killed export left behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from hubsig.cli.journal import JournalExport, JournalMismatch
from tests.test_send_serve import (
    SECRET,
    environment,
    hubsig_command,
    read_report,
    send,
    serving,
)


def add_rows(store: Path, count: int, at: float | None = None) -> list[str]:
    """``count`` journal rows as a handler commits them; their lines."""
    db = sqlite3.connect(store)
    first = db.execute("SELECT coalesce(max(row), 0) FROM hubsig_journal").fetchone()[0] + 1
    lines = [json.dumps({"n": n}) for n in range(first, first + count)]
    stamp = time.time() if at is None else at
    db.executemany(
        "INSERT INTO hubsig_journal (line, at) VALUES (?, ?)", [(x, stamp) for x in lines]
    )
    db.commit()
    db.close()
    return lines


def journal_count(store: Path) -> int:
    db = sqlite3.connect(store)
    try:
        count: int = db.execute("SELECT count(*) FROM hubsig_journal").fetchone()[0]
    finally:
        db.close()
    return count


def file_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    JournalExport(path, tmp_path / "events.jsonl").close()  # creates the tables
    return path


@pytest.mark.slow
def test_a_rotated_file_is_followed_by_one_with_only_new_lines(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, out, _):
        assert send(url, "--count", "3").returncode == 0
    rotated = tmp_path / "events.jsonl.1"
    out.rename(rotated)  # logrotate's move, between runs
    with serving(tmp_path) as (url, out, server):
        assert send(url, "--count", "2").returncode == 0
        out.rename(tmp_path / "events.jsonl.2")  # and while running
        assert send(url, "--count", "4").returncode == 0
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    counts = [len(file_lines(p)) for p in (rotated, tmp_path / "events.jsonl.2", out)]
    assert counts == [3, 2, 4]  # before the mark: the new file got all 9 lines again


def test_exported_rows_are_pruned_past_the_retention_and_never_written_again(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    lines = add_rows(store, 12_000, at=time.time() - 10)
    export = JournalExport(store, out, retention=5)
    assert export.run() == 12_000
    assert journal_count(store) == 1  # the last exported row, which recognises the file
    fresh = add_rows(store, 3)
    assert export.run() == 3
    assert journal_count(store) == 3  # within the retention: kept
    export.close()
    assert file_lines(out) == lines + fresh
    out.rename(tmp_path / "old.jsonl")
    again = JournalExport(store, out, retention=5)
    assert again.run() == 0
    again.close()
    assert out.read_bytes() == b""


def test_rows_within_the_retention_are_kept(store: Path, tmp_path: Path) -> None:
    add_rows(store, 500)
    export = JournalExport(store, tmp_path / "events.jsonl")  # the store's 7 days
    assert export.run() == 500
    export.close()
    assert journal_count(store) == 500


def test_lines_a_killed_export_wrote_before_its_mark_are_not_written_twice(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    lines = add_rows(store, 3)
    export = JournalExport(store, out)
    assert export.run() == 3
    export.close()
    more = add_rows(store, 4)
    with out.open("a", encoding="utf-8") as file:  # killed after writing 2.5 lines, unmarked
        file.write(more[0] + "\n" + more[1] + "\n" + more[2][:5])
    export = JournalExport(store, out)
    assert export.run() == 2  # the cut line and the last; the two whole ones were kept
    assert export.run() == 0
    export.close()
    assert file_lines(out) == lines + more


def test_lines_a_killed_export_wrote_into_a_new_file_are_not_written_twice(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    add_rows(store, 2)
    export = JournalExport(store, out)
    assert export.run() == 2
    export.close()
    out.rename(tmp_path / "old.jsonl")
    more = add_rows(store, 2)
    out.write_text(more[0] + "\n", encoding="utf-8")  # the new file, killed before the mark
    export = JournalExport(store, out)
    assert export.run() == 1
    export.close()
    assert file_lines(out) == more


def test_lines_another_program_appended_are_refused(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    add_rows(store, 2)
    export = JournalExport(store, out)
    assert export.run() == 2
    with out.open("a", encoding="utf-8") as file:
        file.write('{"not": "ours"}\n')
    with pytest.raises(JournalMismatch, match="did not write"):
        export.run()
    export.close()


def test_a_journal_from_before_marks_goes_on_where_its_file_ends(tmp_path: Path) -> None:
    store, out = tmp_path / "events.db", tmp_path / "events.jsonl"
    db = sqlite3.connect(store)
    db.execute("CREATE TABLE hubsig_journal (row INTEGER PRIMARY KEY, line TEXT)")  # no `at`
    db.executemany("INSERT INTO hubsig_journal (line) VALUES (?)", [("a",), ("b",), ("c",)])
    db.commit()
    db.close()
    out.write_text("a\nb\n", encoding="utf-8")
    export = JournalExport(store, out)
    assert export.run() == 1
    export.close()
    assert file_lines(out) == ["a", "b", "c"]


@pytest.mark.slow
def test_serve_after_a_kill_between_write_and_mark_writes_each_line_once(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as (url, out, _):
        assert send(url, "--count", "2").returncode == 0
    db = sqlite3.connect(tmp_path / "events.db")
    row, size = db.execute("SELECT row, size FROM hubsig_journal_export").fetchone()
    db.execute("UPDATE hubsig_journal_export SET row = 1, size = ?", (len(file_lines(out)[0]) + 1,))
    db.commit()  # as if killed after writing line 2, before marking it
    db.close()
    with serving(tmp_path) as (url, out, _):
        assert send(url).returncode == 0
    assert len(file_lines(out)) == 3
    assert len({json.loads(line)["entity"]["id"] for line in file_lines(out)}) == 3
    assert (row, size) == (2, os.path.getsize(out) - len(file_lines(out)[2]) - 1)


@pytest.mark.slow
def test_rotating_under_load_with_workers_writes_each_line_once(tmp_path: Path) -> None:
    report = tmp_path / "report.jsonl"
    with serving(tmp_path, "--workers", "2") as (url, out, server):
        sender = subprocess.Popen(
            hubsig_command(
                "send", url, "--count", "150", "--concurrency", "8", "--report", str(report)
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment(SECRET),
        )
        rotations = 0
        while sender.poll() is None:
            time.sleep(0.15)
            if out.exists():
                rotations += 1
                out.rename(tmp_path / f"events.jsonl.{rotations}")
        assert sender.wait(timeout=120) == 0
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    files = [out, *(tmp_path / f"events.jsonl.{n}" for n in range(1, rotations + 1))]
    ids = [json.loads(line)["entity"]["id"] for f in files if f.exists() for line in file_lines(f)]
    sent = [entity_id for row in read_report(report) for entity_id in row["sent_ids"]]
    assert rotations > 3
    assert sorted(ids) == sorted(sent)  # each accepted event in exactly one file, once
