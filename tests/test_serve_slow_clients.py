"""``hubsig serve`` under idle and slow-head connections: real processes on loopback.

The 1,000 + 300 connection run is ``benchmarks/serve_stress.py`` (figures in
docs/reliability.md); these check the mechanism at small scale.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubsig.cli.event_log import read_event_log
from hubsig.cli.options import positive_seconds
from hubsig.testing import make_events, signed_request
from tests.test_send_serve import SECRET, run_hubsig, serving

SLOW_HEAD = b"POST /webhooks/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"p" * 200


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def deliver(port: int) -> tuple[int, float, str]:
    """One signed delivery on a fresh connection: status, seconds, the event's id."""
    payload = make_events(1)
    request = signed_request(payload, SECRET)
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/webhooks/interactions", request.body, request.headers)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    entity = payload.events[0].entity
    assert entity is not None
    assert entity.id is not None
    return response.status, time.monotonic() - started, entity.id


@contextlib.contextmanager
def connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


@contextlib.contextmanager
def dribbling(sockets: list[socket.socket], every: float = 0.2) -> Iterator[None]:
    """Send each socket one more byte of a request head every ``every`` seconds."""
    stop = threading.Event()

    def drip() -> None:
        for byte in range(len(SLOW_HEAD)):
            for sock in sockets:
                with contextlib.suppress(OSError):  # closed by the receiver, as expected
                    sock.send(SLOW_HEAD[byte : byte + 1])
            if stop.wait(every):
                return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def closed_within(sockets: list[socket.socket], seconds: float) -> int:
    """How many of ``sockets`` the receiver closes within ``seconds`` from now."""
    deadline = time.monotonic() + seconds
    closed = 0
    for sock in sockets:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            while sock.recv(4096):
                pass
            closed += 1
        except ConnectionResetError:
            closed += 1
        except TimeoutError:
            pass
    return closed


@pytest.mark.slow
@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_idle_and_slow_heads_neither_block_deliveries_nor_stay_open(
    tmp_path: Path, parser: str
) -> None:
    options = ["--header-timeout", "1", "--max-connections", "10", "--http", parser]
    with serving(tmp_path, *options) as (url, out, _):
        port = port_of(url)
        with connections(port, 50) as idle, connections(port, 20) as slow, dribbling(slow):
            status, seconds, entity_id = deliver(port)
            assert status == 200  # before the guard: 503, 70 connections past a limit of 10
            assert seconds < 1
            started = time.monotonic()
            assert closed_within(idle + slow, 4) == 70
            assert time.monotonic() - started < 1.9  # at the header timeout, not later
            assert deliver(port)[0] == 200
    assert entity_id in {record["entity"]["id"] for record in read_event_log(out)}


@pytest.mark.slow
@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_the_deadline_ends_with_the_head_so_a_slow_body_is_still_served(
    tmp_path: Path, parser: str
) -> None:
    request = signed_request(make_events(1), SECRET)
    head = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
    options = ["--header-timeout", "0.5", "--http", parser]
    with serving(tmp_path, *options) as (url, _, _), connections(port_of(url), 1) as (sock,):
        sock.sendall(
            b"POST /webhooks/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Content-Length: {len(request.body)}\r\n{head}\r\n".encode()
        )
        time.sleep(1)  # twice the header timeout, within the body timeout
        sock.sendall(request.body)
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")


@pytest.mark.slow
@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_a_head_past_16_kib_is_refused_and_closed(tmp_path: Path, parser: str) -> None:
    options = ["--http", parser, "--header-timeout", "30"]
    with serving(tmp_path, *options) as (url, _, _), connections(port_of(url), 1) as (sock,):
        sock.sendall(b"POST /webhooks/interactions HTTP/1.1\r\nX-Big: " + b"a" * 20 * 1024)
        sock.settimeout(5)  # without the bound, httptools waits for the head's end, and times out
        answer = b""
        with contextlib.suppress(ConnectionResetError):  # closed with bytes unread: a reset
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer == b"" or answer.startswith((b"HTTP/1.1 431 ", b"HTTP/1.1 400 "))
        if answer.startswith(b"HTTP/1.1 431 "):
            assert b"content-length: 25\r\n" in answer
            assert answer.endswith(b"\r\n\r\nRequest head is too large")


@pytest.mark.slow
def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    options = ["--header-timeout", "3", "--keep-alive-timeout", "0.5"]
    with serving(tmp_path, *options) as (url, _, _), connections(port_of(url), 1) as (sock,):
        sock.sendall(b"GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 404")
        assert 0.4 < time.monotonic() - started < 2.5


@pytest.mark.slow
def test_a_keep_alive_connection_dribbling_its_next_head_is_closed(tmp_path: Path) -> None:
    options = ["--header-timeout", "1", "--keep-alive-timeout", "30"]
    with serving(tmp_path, *options) as (url, _, _), connections(port_of(url), 1) as (sock,):
        sock.sendall(b"GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 404")
        with dribbling([sock], every=0.1):
            assert closed_within([sock], 4) == 1


@pytest.mark.slow
def test_past_the_waiting_limit_the_longest_waiting_connection_is_closed(
    tmp_path: Path,
) -> None:
    options = ["--header-timeout", "30", "--max-waiting-connections", "10"]
    with serving(tmp_path, *options) as (url, _, _):
        port = port_of(url)
        with connections(port, 10) as first:
            time.sleep(0.2)
            with connections(port, 10) as second:
                assert closed_within(first, 3) == 10
                assert closed_within(second, 0.3) == 0
                assert deliver(port)[0] == 200


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_header_timeout_must_be_a_positive_number(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a positive number of seconds"):
        positive_seconds(value)
    assert positive_seconds("0.25") == 0.25


@pytest.mark.slow
def test_a_header_timeout_that_is_no_positive_number_is_a_usage_error() -> None:
    done = run_hubsig("serve", "--port", "0", "--header-timeout", "0")
    assert done.returncode == 2
    assert "--header-timeout: '0' is not a positive number of seconds" in done.stderr
