"""``hubsig serve`` failing to start: one line, exit 2, nothing left behind; and its help."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from hubsig.cli import serving as serving_command
from tests.test_send_serve import run_hubsig, send, serving


@pytest.mark.slow
def test_a_port_in_use_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = run_hubsig("serve", "--port", port, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr == f"hubsig: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("host", ["nowhere.invalid", "300.1.2.3"])
def test_an_unresolvable_host_is_one_line_and_leaves_no_file(tmp_path: Path, host: str) -> None:
    done = run_hubsig("serve", "--host", host, "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"hubsig: cannot listen on {host} port 0: ")
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "path", "message"),
    [
        ("--store", "/proc/nope.db", "hubsig: cannot use the store /proc/nope.db: "),
        ("--store", "missing/events.db", "hubsig: cannot use the store missing/events.db: "),
        ("--out", "/proc/nope.jsonl", "hubsig: cannot open /proc/nope.jsonl: "),
        ("--out", ".", "hubsig: cannot open .: "),
    ],
)
def test_a_store_or_file_that_cannot_be_opened_is_one_line(
    tmp_path: Path, option: str, path: str, message: str
) -> None:
    done = run_hubsig("serve", "--port", "0", option, path, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # the store it had begun is removed again


@pytest.mark.slow
def test_a_mismatched_journal_says_how_to_start_fresh(tmp_path: Path) -> None:
    with serving(tmp_path) as (url, out, _):
        assert send(url, "--count", "3").returncode == 0
    (tmp_path / "events.db").rename(tmp_path / "elsewhere.db")
    arguments = ["serve", "--port", "0", "--out", str(out), "--store", str(tmp_path / "new.db")]
    done = run_hubsig(*arguments)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "has 3 lines but the store's journal only 0" in done.stderr
    assert f"To start fresh, move {out} away (or give another --out)" in done.stderr
    assert "give the --store it was written with" in done.stderr
    assert not (tmp_path / "new.db").exists()


@pytest.mark.slow
def test_help_shows_every_default() -> None:
    done = run_hubsig("serve", "--help")
    text = " ".join(done.stdout.split())
    for default in [
        "(default: 127.0.0.1)",
        "(default: 8000)",
        "(default: /webhooks/interactions)",
        "(default: events.jsonl)",
        "(default: hubsig-events.db)",
        "(default 5)",
        "(default 1000)",
        "(default 2000)",
        "(default 1)",
    ]:
        assert default in text
    commands = argparse.ArgumentParser().add_subparsers()
    serving_command.add_command(commands)
    serve = commands.choices["serve"]
    formatter = serve._get_formatter()
    for action in serve._actions:
        if action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in (formatter._get_help_string(action) or ""), action.dest
