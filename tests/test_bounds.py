"""Bounds before authentication and a 4xx for every bad input, through every adapter.

Methods other than POST, unreadable ``Content-Length`` values, lone
surrogates, chunked bodies a WSGI server cannot read, bodies that take too
long, and more bodies in flight than the budget allows: each gets its own
status, never a 500, and never reaches the app.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import pytest

from hubsig import WebhookConfig
from hubsig._budget import BodyBudget
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.testing import make_events, signed_request
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware
from tests.adapters import ADAPTERS, Answer
from tests.harness import Reply, Sent, call_asgi, call_wsgi, wsgi_environ

SECRET = "bounds-secret"


def signed(body: bytes, **sent: Any) -> Sent:
    request = signed_request(body, SECRET)
    return Sent([body], dict(request.headers), **sent)


def message(answer: Answer) -> str:
    text: str = json.loads(answer.body)["status"]["message"]
    return text


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_get_405_with_allow_and_an_info_line(
    adapter: str, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hubsig")
    answer = ADAPTERS[adapter](
        WebhookConfig(secret=SECRET), signed(make_events().to_json(), method=method)
    )
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert not answer.reached_app
    refusals = [r for r in caplog.records if "method_not_allowed" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.INFO]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_methods_setting_widens_what_a_guarded_path_takes(adapter: str) -> None:
    config = WebhookConfig(secret=SECRET, methods=("post", "PUT"))
    answer = ADAPTERS[adapter](config, signed(make_events().to_json(), method="PUT"))
    assert answer.status == 200
    refused = ADAPTERS[adapter](config, signed(make_events().to_json(), method="GET"))
    assert (refused.status, refused.headers["allow"]) == (405, "POST, PUT")


UNREADABLE_LENGTHS = {
    "superscript-two": "\u00b2",
    "arabic-digits": "\u0661\u0662",
    "5000-digits": "9" * 5000,
    "negative": "-1",
    "exponent": "1e3",
    "hex": "0x10",
    "space": "12 34",
    "plus": "+5",
    "empty": "",  # ASGI only: WSGI cannot tell an empty CONTENT_LENGTH from none (PEP 3333)
}


@pytest.mark.parametrize(
    ("adapter", "length"),
    [
        pytest.param(adapter, length, id=f"{adapter}-{name}")
        for adapter in ADAPTERS
        for name, length in UNREADABLE_LENGTHS.items()
        if length or not adapter.endswith("wsgi")
    ],
)
def test_unreadable_content_length_is_400(adapter: str, length: str) -> None:
    body = make_events().to_json()
    sent = signed(body, declare_length=False, extra_headers=[("Content-Length", length)])
    answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET), sent)
    assert answer.status == 400
    assert message(answer).startswith("malformed_request:")
    assert not answer.reached_app


@pytest.mark.parametrize("adapter", [name for name in ADAPTERS if name.endswith("asgi")])
def test_conflicting_content_lengths_are_400(adapter: str) -> None:
    """ASGI passes repeated headers on; a WSGI server joins or refuses them itself."""
    body = make_events().to_json()
    sent = signed(
        body,
        declare_length=False,
        extra_headers=[("Content-Length", str(len(body))), ("Content-Length", "1")],
    )
    answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET), sent)
    assert (answer.status, answer.reached_app) == (400, False)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize(
    "escaped",
    [b"\\ud800", b"\\uDFFF", b"a\\udc00b", b"\\ud83d", b"\\ude00\\ud83d"],
)
def test_lone_surrogates_are_400_before_any_handler(adapter: str, escaped: bytes) -> None:
    body = (
        b'{"operationId":"op","data":{"entities":[{"event":"STARTED","entity":{"id":"ok"}},'
        b'{"event":"STARTED","entity":{"id":"' + escaped + b'","selfUri":"x"}}]}}'
    )
    answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET), signed(body))
    assert answer.status == 400
    assert message(answer).startswith("malformed_payload:")
    assert not answer.reached_app


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_escaped_surrogate_pairs_are_ordinary_text(adapter: str) -> None:
    body = (
        b'{"operationId":"op","data":{"entities":'
        b'[{"event":"STARTED","entity":{"id":"\\ud83d\\ude00"}}]}}'
    )
    answer = ADAPTERS[adapter](WebhookConfig(secret=SECRET), signed(body))
    assert answer.status == 200
    assert json.loads(answer.body)["data"]["ids"] == [{"id": "\U0001f600"}]


def test_wsgi_chunked_body_under_a_server_that_cannot_read_it_is_411() -> None:
    reached: list[bool] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        reached.append(True)
        start_response("200 OK", [])
        return [b""]

    body = make_events().to_json()
    headers = {**signed_request(body, SECRET).headers, "Transfer-Encoding": "chunked"}
    middleware = WSGIMiddleware(app, secret=SECRET)
    sent = Sent([body], dict(headers), declare_length=False)
    unterminated = wsgi_environ(sent)
    del unterminated["wsgi.input_terminated"]
    status, _, answer = call_wsgi(middleware, sent, environ=unterminated)
    assert status == 411
    assert json.loads(answer)["status"]["message"].startswith("length_required:")
    assert not reached
    # The same body where the server de-chunks it (gunicorn, werkzeug) is read and accepted.
    assert call_wsgi(middleware, sent).status == 200


class _SlowInput:
    """A ``wsgi.input`` whose client sends a byte at a time, slowly."""

    def __init__(self, body: bytes, delay: float) -> None:
        self._body = io.BytesIO(body)
        self._delay = delay

    def read(self, size: int = -1) -> bytes:
        time.sleep(self._delay)
        return self._body.read(1)


def test_wsgi_body_slower_than_body_timeout_is_408() -> None:
    body = make_events().to_json()
    headers = dict(signed_request(body, SECRET).headers)
    environ = wsgi_environ(Sent([body], headers), **{"wsgi.input": _SlowInput(body, 0.01)})
    middleware = WSGIMiddleware(lambda e, s: [b""], secret=SECRET, body_timeout=0.05)
    status, response_headers, answer = call_wsgi(middleware, Sent([], {}), environ=environ)
    assert status == 408
    assert json.loads(answer)["status"]["message"].startswith("body_timeout:")
    assert "connection" not in response_headers  # hop-by-hop: not a WSGI app's to send
    assert middleware._receiver.budget.used == 0


def _asgi_sent(body: bytes, declared: int | None) -> Sent:
    """Signed headers for ``body``, with ``Content-Length: declared`` (None: undeclared); the
    test's own ``receive`` sends the body, or stalls."""
    headers = dict(signed_request(body, SECRET).headers)
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return Sent([], headers, declare_length=False)


def test_asgi_stalled_body_is_408_with_connection_close() -> None:
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def stalled() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    body = make_events().to_json()
    middleware = ASGIMiddleware(app, secret=SECRET, body_timeout=0.05)
    started = time.monotonic()
    status, headers, answer = asyncio.run(
        call_asgi(middleware, _asgi_sent(body, len(body)), receive=stalled)
    )
    assert time.monotonic() - started < 5
    assert (status, headers["connection"]) == (408, "close")
    assert json.loads(answer)["status"]["message"].startswith("body_timeout:")
    assert not reached
    assert middleware._receiver.budget.used == 0


def test_asgi_body_timeout_covers_a_slow_drip_too() -> None:
    body = make_events().to_json()

    async def drip() -> dict[str, Any]:
        await asyncio.sleep(0.02)
        return {"type": "http.request", "body": b"x", "more_body": True}

    middleware = ASGIMiddleware(lambda s, r, se: None, secret=SECRET, body_timeout=0.2)  # type: ignore[arg-type,return-value]
    status, _, _ = asyncio.run(call_asgi(middleware, _asgi_sent(body, None), receive=drip))
    assert status == 408


def test_asgi_bodies_past_the_inflight_budget_get_503_then_the_budget_is_released() -> None:
    """Three clients declare 500 KiB each against a 1 MiB budget and stall: each is charged
    what it declared past the first 64 KiB, so the third is refused before any of its body
    is read, and the stalled two time out."""
    size = 500 * 1024
    read: list[int] = []

    def stalls(number: int) -> Any:
        async def receive() -> dict[str, Any]:
            read.append(number)
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        return receive

    async def scenario() -> list[Reply]:
        middleware = ASGIMiddleware(
            lambda s, r, se: None,  # type: ignore[arg-type,return-value]
            secret=SECRET,
            max_body_size=512 * 1024,
            max_inflight_bytes=1024 * 1024,
            body_timeout=0.3,
        )
        calls = [
            asyncio.create_task(call_asgi(middleware, _asgi_sent(b"", size), receive=stalls(n)))
            for n in range(3)
        ]
        answers = await asyncio.gather(*calls)
        assert middleware._receiver.budget.used == 0
        return answers

    answers = asyncio.run(scenario())
    assert [status for status, _, _ in answers] == [408, 408, 503]
    assert read == [0, 1]
    busy = answers[2][1]
    assert (busy["retry-after"], busy["connection"]) == ("1", "close")


def test_small_deliveries_pass_while_large_bodies_fill_the_budget() -> None:
    """Clients that declare large bodies and send nothing fill the budget; a delivery
    of a few KiB (the usual size) is still received, since the budget does not count
    a body's first 64 KiB."""

    async def never() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def scenario() -> tuple[list[int], int, list[int]]:
        seen: list[int] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(200)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        middleware = ASGIMiddleware(
            app, secret=SECRET, max_body_size=512 * 1024, max_inflight_bytes=1024 * 1024
        )
        idle = [
            asyncio.create_task(call_asgi(middleware, _asgi_sent(b"", 500 * 1024), receive=never))
            for _ in range(4)
        ]
        await asyncio.sleep(0.05)
        refused = [task.result()[0] for task in idle if task.done()]
        body = make_events(20).to_json()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        status, _, _ = await call_asgi(middleware, _asgi_sent(body, len(body)), receive=receive)
        for task in idle:
            task.cancel()
        await asyncio.gather(*idle, return_exceptions=True)
        return seen, status, refused

    seen, status, refused = asyncio.run(scenario())
    assert refused == [503, 503]  # 2 x (500 - 64) KiB fill the 1 MiB budget
    assert (status, seen) == (200, [200])


def test_undeclared_chunks_count_against_the_budget_as_they_arrive() -> None:
    chunks = [b"x" * 20_000] * 10

    async def receive_factory() -> Any:
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        return receive

    async def scenario() -> tuple[int, dict[str, str], bytes]:
        middleware = ASGIMiddleware(
            lambda s, r, se: None,  # type: ignore[arg-type,return-value]
            secret=SECRET,
            max_body_size=256 * 1024,
            max_inflight_bytes=256 * 1024,
        )
        held = 256 * 1024 - 100_000  # other requests hold all but 100,000 bytes
        assert middleware._receiver.budget.reserve(held)
        answer = await call_asgi(middleware, _asgi_sent(b"", None), receive=await receive_factory())
        assert middleware._receiver.budget.used == held  # 200,000 - 64 KiB would not fit
        return answer

    status, headers, _ = asyncio.run(scenario())
    assert (status, headers["connection"]) == (503, "close")


def test_413_asks_the_server_to_close_the_connection() -> None:
    body = b"x" * 2048

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": True}

    middleware = ASGIMiddleware(lambda s, r, se: None, secret=SECRET, max_body_size=1024)  # type: ignore[arg-type,return-value]
    status, headers, _ = asyncio.run(call_asgi(middleware, _asgi_sent(b"", None), receive=receive))
    assert (status, headers["connection"]) == (413, "close")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_transient_refusals_are_never_acknowledged(
    adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``acknowledge_rejections`` stops retries of bad deliveries, never of a busy receiver."""
    config = WebhookConfig(secret=SECRET, acknowledge_rejections=True)
    with monkeypatch.context() as full:  # every receiver's budget taken by other requests
        full.setattr(BodyBudget, "reserve", lambda self, size: False)
        answer = ADAPTERS[adapter](config, signed(make_events(800).to_json()))  # 200 KiB
    assert answer.status == 503
    tampered = Sent([b"{}"], {"X-Hub-Signature": "sha1=" + "0" * 40})
    assert ADAPTERS[adapter](config, tampered).status == 200


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_more_events_than_max_events_is_413_before_any_handler(adapter: str) -> None:
    config = WebhookConfig(secret=SECRET, max_events=5)
    assert ADAPTERS[adapter](config, signed(make_events(5).to_json())).status == 200
    answer = ADAPTERS[adapter](config, signed(make_events(6).to_json()))
    assert (answer.status, answer.reached_app) == (413, False)
    assert message(answer).startswith("too_many_events:")
