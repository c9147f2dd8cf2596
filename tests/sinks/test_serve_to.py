"""``hubsig serve --to URL``: a receiver that hands its events to an engine."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from hubsig.cli.serving import _sink_for, hidden_password
from hubsig.errors import UsageError
from hubsig.stores import SQLiteStore
from tests.redis_server import RedisServer
from tests.sinks.conftest import fresh_name
from tests.sinks.servers import free_port
from tests.test_send_serve import SECRET, environment, hubsig_command, send


def test_a_sink_that_can_never_work_is_a_usage_error_without_its_password(
    tmp_path: Path,
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0?stream=s"
    with pytest.raises(UsageError, match="cannot use --to") as raised:
        _sink_for(url, SQLiteStore(tmp_path / "s.db"))
    assert "hunter2" not in str(raised.value)
    assert "redis://***@127.0.0.1:" in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:1/0?stream=s", "redis://127.0.0.1:1/0?stream=s"),
        ("redis://:pw@127.0.0.1:1/0", "redis://***@127.0.0.1:1/0"),
        ("nats://user:pw@h:4222?stream=S", "nats://***@h:4222?stream=S"),
        ("nats://S3CRETTOKEN@h:4222?stream=S", "nats://***@h:4222?stream=S"),  # a token
        ("redis://:pa/ss#WRONG?PW@h:1/0?stream=s", "redis://***@h:1/0?stream=s"),  # unencoded
    ],
)
def test_a_sink_urls_password_is_hidden_in_what_serve_logs(url: str, shown: str) -> None:
    assert hidden_password(url) == shown


@pytest.mark.slow
def test_serve_to_a_redis_stream_publishes_each_event_once(
    stream_redis: RedisServer, tmp_path: Path
) -> None:
    stream = fresh_name()
    log = tmp_path / "serve.log"
    command = hubsig_command(
        "serve", "--port", "0", "--store", str(tmp_path / "s.db"),
        "--to", f"{stream_redis.url}?stream={stream}",
    )  # fmt: skip
    with log.open("w") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environment(SECRET)
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("hubsig: listening on "), log.read_text()
            url = line.split("listening on ", 1)[1].strip()
            sent = send(url, "--count", "3", "--events", "2")
            assert sent.returncode == 0, sent.stdout + sent.stderr
        finally:
            process.terminate()
            process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
    entries: Any = redis.Redis.from_url(stream_redis.url).xrange(stream)
    keys = [fields[b"key"] for _, fields in entries]
    assert len(keys) == 6 == len(set(keys))
    text = log.read_text()
    assert text.count(f"published 2 events to {stream_redis.url}?stream={stream}") == 3, text
    assert not (tmp_path / "events.jsonl").exists()


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--outbox"], "--outbox relays to the engine --to names"),
        (["--outbox", "--to", "redis://h:1/0?stream=s", "--store", ":memory:"], "needs a --store"),
    ],
)
def test_serve_to_options_that_cannot_work_are_usage_errors(
    arguments: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from hubsig.cli import main

    assert main(["serve", "--secret", SECRET, "--port", "0", *arguments]) == 2
    assert says in capsys.readouterr().err


def test_a_url_of_no_engine_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    from hubsig.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["serve", "--secret", SECRET, "--port", "0", "--to", "http://h:1/"])
    assert exited.value.code == 2
    assert "expected redis://HOST:PORT/DB?stream=NAME" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_to_with_an_outbox_answers_200_while_the_engine_is_down(tmp_path: Path) -> None:
    from tests.sinks.servers import durable_redis

    server = durable_redis(tmp_path)
    server.start()
    stream, log = fresh_name(), tmp_path / "serve.log"
    command = hubsig_command(
        "serve", "--port", "0", "--store", str(tmp_path / "s.db"), "--outbox",
        "--to", f"{server.url}?stream={stream}",
    )  # fmt: skip
    try:
        with log.open("w") as errors:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environment(SECRET)
            )
            try:
                assert process.stdout is not None
                line = process.stdout.readline()
                assert line.startswith("hubsig: listening on "), log.read_text()
                url = line.split("listening on ", 1)[1].strip()
                server.stop()  # the engine goes away: the sender still gets its 200s
                sent = send(url, "--count", "3", "--events", "2")
                assert sent.returncode == 0, sent.stdout + sent.stderr
                assert "accepted 3" in sent.stdout
                time.sleep(2.0)  # the relay tries, fails and says so; the rows wait
                server.start()
                deadline = time.monotonic() + 20
                while len(_keys(server.url, stream)) < 6 and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                process.terminate()
                process.wait(timeout=30)
                if process.stdout is not None:
                    process.stdout.close()
        keys = _keys(server.url, stream)
        assert len(keys) == 6 == len(set(keys))
        text = log.read_text()
        assert "could not relay the outbox" in text, text
        assert "relaying the outbox" in text
    finally:
        server.stop()


def _keys(url: str, stream: str) -> list[bytes]:
    entries: Any = redis.Redis.from_url(url).xrange(stream)
    return [fields[b"key"] for _, fields in entries]
