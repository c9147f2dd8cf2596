"""Attempt tokens never repeat: within a process, across threads, and in a forked child."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from hubsig._attempts import attempt_token


def test_tokens_do_not_repeat_across_threads() -> None:
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(attempt_token() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [token for tokens in made for token in tokens]
    assert len(set(every)) == len(every) == 40_000


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_does_not_repeat_its_parents_tokens() -> None:
    """gunicorn forks its workers after importing the app: each must draw its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next tokens, to the parent
        os.close(read)
        os.write(write, " ".join(attempt_token() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    parents = {attempt_token() for _ in range(100)}
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(childs) == 100
    assert not parents & childs


def test_a_process_whose_pid_changed_draws_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fork that ran no at-fork hooks (a raw libc fork) still gets tokens of its own."""
    before = attempt_token()
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as a child would see it
    after = attempt_token()
    assert before[:24] != after[:24]
