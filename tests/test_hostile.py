"""Hostile input through every adapter: each gets its documented status, memory stays bounded,
and no log record or response ever carries a secret or an expected digest."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tracemalloc
from typing import Any

import pytest

import hubsig
from hubsig import WebhookConfig
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.testing import make_events, signed_request
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from tests.adapters import ADAPTERS, Answer
from tests.harness import Sent, asgi_scope, wsgi_environ

SECRET = "hostile-secret"
MiB = 1024 * 1024


def signed(body: bytes, **options: Any) -> Sent:
    request = signed_request(body, SECRET, **options)
    return Sent([body], dict(request.headers))


def entities(count: int) -> bytes:
    return make_events(count).to_json()


CASES: list[tuple[str, Any, int, str | None, dict[str, Any]]] = [
    ("deeply nested JSON", lambda: signed(b'{"a":' * 200_000 + b"1" + b"}" * 200_000), 413, "body_too_large", {}),
    ("deeply nested JSON within the limit", lambda: signed(b"[" * 100_000 + b"]" * 100_000), 400, "malformed_payload", {}),
    ("10,000 entities", lambda: signed(entities(10_000)), 200, None, {"max_body_size": 8 * MiB, "max_events": 10_000}),
    ("10,000 entities past max_events", lambda: signed(entities(10_000)), 413, "too_many_events", {"max_body_size": 8 * MiB}),
    ("10,000 entities over the default limit", lambda: signed(entities(10_000)), 413, "body_too_large", {}),
    ("non-UTF-8", lambda: signed(b'{"operationId": "\xc3\x28"}'), 400, "malformed_payload", {}),
    ("raw NUL byte", lambda: signed(b'{"operationId": "a\x00b"}'), 400, "malformed_payload", {}),
    ("escaped NUL in a string", lambda: signed(b'{"operationId": "a\\u0000b"}'), 200, None, {}),
    ("duplicate JSON keys", lambda: signed(b'{"operationId": "a", "operationId": "b"}'), 200, None, {}),
    ("duplicate JSON keys, strict", lambda: signed(b'{"operationId": "a", "operationId": "b"}'), 400, "malformed_payload", {"strict": True}),
    ("huge integer", lambda: signed(b'{"n": ' + b"9" * 10_000 + b"}"), 400, "malformed_payload", {}),
    ("huge float in an unknown field", lambda: signed(b'{"n": 1e999}'), 200, None, {}),
    ("NaN", lambda: signed(b'{"n": NaN}'), 400, "malformed_payload", {}),
    ("non-ASCII signature header", lambda: Sent([b"{}"], {"X-Hub-Signature": "sha1=" + "ü" * 40}), 401, "malformed_signature", {}),
    ("signature header of 1 MB", lambda: Sent([b"{}"], {"X-Hub-Signature": "sha1=" + "a" * MiB}), 401, "malformed_signature", {}),
    (
        "repeated signature headers",
        lambda: Sent([b"{}"], {"X-Hub-Signature": hubsig.sign(b"{}", SECRET)}, extra_headers=[("X-Hub-Signature", hubsig.sign(b"{}", SECRET))]),
        401,
        "malformed_signature",
        {},
    ),
]  # fmt: skip


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    ("name", "sent", "status", "code", "settings"), CASES, ids=[c[0] for c in CASES]
)
def test_documented_status(
    adapter: str, name: str, sent: Any, status: int, code: str | None, settings: dict[str, Any]
) -> None:
    answer: Answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET, **settings), sent())
    assert answer.status == status
    if code is not None:
        assert json.loads(answer.body)["status"]["message"].startswith(code + ":")
        assert not answer.reached_app


# --- 100 MB, declared or streamed -----------------------------------------------------------


def test_asgi_refuses_a_declared_100_mb_body_without_reading_it() -> None:
    received: list[int] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never reached")

    headers = {"Content-Length": "100000000", "X-Hub-Signature": "sha1=" + "0" * 40}
    scope = asgi_scope(Sent([], headers, path="/", declare_length=False))
    asyncio.run(ASGIMiddleware(app, secret=SECRET)(scope, receive, send))
    assert sent[0]["status"] == 413
    assert received == []


UNSIGNED_ZEROS = {"X-Hub-Signature": "sha1=" + "0" * 40}
"""A well-formed signature that matches nothing."""


def _streamed_chunks(total: int, size: int = 65536) -> Any:
    chunk = b" " * size
    for _ in range(total // size):
        yield chunk


def test_asgi_stops_reading_a_streamed_100_mb_body_at_the_limit() -> None:
    chunks = _streamed_chunks(100_000_000)
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": next(chunks), "more_body": True}

    statuses: list[int] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never reached")

    scope = asgi_scope(Sent([], UNSIGNED_ZEROS, path="/", declare_length=False))
    tracemalloc.start()
    asyncio.run(ASGIMiddleware(app, secret=SECRET)(scope, receive, send))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert statuses == [413]
    assert reads <= MiB // 65536 + 1
    assert peak < 4 * MiB


class EndlessInput(io.RawIOBase):
    """A ``wsgi.input`` that would deliver 100 MB, counting what is read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.read_bytes >= 100_000_000:
            return 0
        buffer[:] = b" " * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


@pytest.mark.parametrize("declared", [True, False])
def test_wsgi_reads_at_most_the_limit_of_a_100_mb_body(declared: bool) -> None:
    stream = EndlessInput()
    declared_length = {"CONTENT_LENGTH": "100000000"} if declared else {}
    sent = Sent([], UNSIGNED_ZEROS, path="/", declare_length=declared)
    environ = wsgi_environ(sent, **{"wsgi.input": stream}, **declared_length)
    statuses: list[str] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        raise AssertionError("never reached")

    middleware = WSGIMiddleware(app, secret=SECRET)
    tracemalloc.start()

    def start_response(status: str, headers: Any, exc_info: Any = None, /) -> Any:
        statuses.append(status)
        return None

    middleware(environ, start_response)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert statuses[0].startswith("413")
    assert stream.read_bytes <= (0 if declared else MiB + 65536)
    assert peak < 4 * MiB


# --- no secret, no expected digest, anywhere ----------------------------------------------


def test_no_secret_or_expected_digest_in_any_log_or_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bodies = [case[1]().body for case in CASES] + [make_events(2).to_json(), b"{}", b"not json"]
    expected = {
        hubsig.sign(body, SECRET, algorithm)[len(algorithm) + 1 :]
        for body in bodies
        for algorithm in hubsig.ALGORITHMS
    }
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for adapter in ADAPTERS.values():
            for body in bodies:
                for sent in (
                    Sent([body], {"X-Hub-Signature": hubsig.sign(body, "wrong-secret")}),
                    Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)[:-2]}),
                    Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET, "sha256")}),
                    signed(body, extra_headers={"x-test-fail": "1"}),
                    signed(body),
                ):
                    answer = adapter(WebhookConfig(secret=SECRET, algorithms=["sha1"]), sent)
                    texts.append(answer.body.decode("utf-8", "replace"))
                    texts.append(json.dumps(answer.headers))
        texts.extend(record.getMessage() for record in caplog.records)
        texts.extend(caplog.text.splitlines())
    joined = "\n".join(texts)
    assert SECRET not in joined
    for digest in expected:
        assert digest not in joined
