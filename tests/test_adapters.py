"""One table of requests, run through every adapter: ASGI and WSGI middleware, @webhook both ways.

Each adapter must answer the same request the same way and must never let a
refused delivery reach the app or handler.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hubsig
from hubsig import RequestView, WebhookConfig
from hubsig.testing import signed_request
from tests.adapters import ADAPTERS, Adapter, Answer
from tests.harness import Sent, call_wsgi

SECRET = "It's a Secret to Everybody"
OLD_SECRET = "last-years-secret"
TRACE_ID = "463ac35c9f6413ad48485a3953bb6124"
CHANNEL_SECRETS = {"chat": "chat-secret", "email": "email-secret"}


def events_body(*ids: str, event: str = "STARTED", media: str = "chat") -> bytes:
    entities = [{"event": event, "entity": {"id": i, "mediaType": media}} for i in ids]
    return json.dumps({"operationId": "op-1", "data": {"entities": entities}}).encode()


def signed(body: bytes, secret: str = SECRET, algorithm: str = "sha1", **kw: Any) -> Sent:
    """A sender's request from the testing kit, cut into ``chunks`` if given."""
    extra = kw.pop("headers", {})
    request = signed_request(
        body, secret, algorithm=algorithm, with_trace=False, extra_headers=extra
    )
    return Sent(chunks=kw.pop("chunks", [body]), headers=dict(request.headers), **kw)


def channel_secret(request: RequestView) -> str | None:
    return CHANNEL_SECRETS.get(request.path.rsplit("/", 1)[-1])


async def async_channel_secret(request: RequestView) -> str | None:
    return channel_secret(request)


@dataclass
class Case:
    name: str
    sent: Callable[[], Sent]
    status: int | None
    code: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    reaches_app: bool | None = None
    endpoint: bool = True  # whether the case applies to @webhook (it guards every path)

    def __post_init__(self) -> None:
        if self.reaches_app is None:
            self.reaches_app = self.status == 200 and self.code is None


BODY = events_body("a-1", "a-2")
BIG = events_body(*(f"id-{n:06d}" for n in range(200)))

CASES = [
    Case("good delivery", lambda: signed(BODY), 200),
    Case("sha256 in X-Hub-Signature", lambda: signed(BODY, algorithm="sha256"), 200),
    Case(
        "X-Hub-Signature-256 header",
        lambda: Sent([BODY], {"X-Hub-Signature-256": hubsig.sign(BODY, SECRET, "sha256")}),
        200,
        config={"header_name": "X-Hub-Signature-256", "algorithms": ["sha256"]},
    ),
    Case(
        "body in many chunks",
        lambda: signed(BIG, chunks=[BIG[i : i + 7] for i in range(0, len(BIG), 7)]),
        200,
    ),
    Case(
        "chunked, length undeclared",
        lambda: signed(BODY, declare_length=False, chunks=[BODY[:9], BODY[9:]]),
        200,
    ),
    Case("wrong secret", lambda: signed(BODY, secret="not-the-secret"), 401, "signature_mismatch"),
    Case(
        "tampered body",
        lambda: Sent([BODY + b" "], signed(BODY).headers),
        401,
        "signature_mismatch",
    ),
    Case(
        "malformed signature",
        lambda: Sent([BODY], {"X-Hub-Signature": "sha1=xyz"}),
        401,
        "malformed_signature",
    ),
    Case(
        "no algorithm",
        lambda: Sent([BODY], {"X-Hub-Signature": "0" * 40}),
        401,
        "malformed_signature",
    ),
    Case(
        "unsupported algorithm",
        lambda: Sent([BODY], {"X-Hub-Signature": "md5=" + "0" * 32}),
        401,
        "unsupported_algorithm",
    ),
    Case(
        "disallowed sha1",
        lambda: signed(BODY),
        401,
        "disallowed_algorithm",
        config={"algorithms": ["sha256"]},
    ),
    Case("missing header", lambda: Sent([BODY], {}), 401, "missing_signature"),
    Case(
        "non-ascii header",
        lambda: Sent([BODY], {"X-Hub-Signature": "sha1=" + "é" * 40}),
        401,
        "malformed_signature",
    ),
    Case(
        "two signature headers",
        lambda: Sent(
            [BODY],
            signed(BODY).headers,
            extra_headers=[("X-Hub-Signature", hubsig.sign(BODY, SECRET))],
        ),
        401,
        "malformed_signature",
    ),
    Case(
        "declared too large",
        lambda: signed(BIG),
        413,
        "body_too_large",
        config={"max_body_size": 1000},
    ),
    Case(
        "undeclared too large",
        lambda: signed(
            BIG, declare_length=False, chunks=[BIG[i : i + 512] for i in range(0, len(BIG), 512)]
        ),
        413,
        "body_too_large",
        config={"max_body_size": 1000},
    ),
    Case("malformed JSON", lambda: signed(b'{"operationId": '), 400, "malformed_payload"),
    Case("not UTF-8", lambda: signed(b'{"operationId": "\xff"}'), 400, "malformed_payload"),
    Case("unknown enum value kept", lambda: signed(events_body("a-1", event="PAUSED")), 200),
    Case(
        "unknown enum value, strict",
        lambda: signed(events_body("a-1", event="PAUSED")),
        400,
        "malformed_payload",
        config={"strict": True},
    ),
    Case(
        "app or handler raises",
        lambda: signed(BODY, headers={"x-test-fail": "1"}),
        500,
        reaches_app=True,
    ),
    Case(
        "rotation: old secret still accepted",
        lambda: signed(BODY, secret=OLD_SECRET),
        200,
        config={"secret": [SECRET, OLD_SECRET]},
    ),
    Case(
        "per-channel secret",
        lambda: signed(BODY, secret="chat-secret", path="/hooks/chat"),
        200,
        config={"secret": channel_secret},
    ),
    Case(
        "per-channel, async resolver",
        lambda: signed(BODY, secret="email-secret", path="/hooks/email"),
        200,
        config={"secret": async_channel_secret},
    ),
    Case(
        "per-channel, other channel's secret",
        lambda: signed(BODY, secret="chat-secret", path="/hooks/email"),
        401,
        "signature_mismatch",
        config={"secret": channel_secret},
    ),
    Case(
        "per-channel, unknown channel",
        lambda: signed(BODY, secret="chat-secret", path="/hooks/sms"),
        401,
        "no_secret",
        config={"secret": channel_secret},
    ),
    Case(
        "api key required and sent",
        lambda: signed(BODY, headers={"x-api-key": "k2"}),
        200,
        config={"api_keys": ["k1", "k2"]},
    ),
    Case(
        "api key required, missing",
        lambda: signed(BODY),
        401,
        "invalid_api_key",
        config={"api_keys": ["k1"]},
    ),
    Case(
        "api key required, wrong",
        lambda: signed(BODY, headers={"x-api-key": "k3"}),
        401,
        "invalid_api_key",
        config={"api_keys": ["k1"]},
    ),
    Case(
        "acknowledge and discard",
        lambda: signed(BODY, secret="wrong"),
        200,
        "signature_mismatch",
        config={"acknowledge_rejections": True},
    ),
    Case(
        "unguarded path untouched",
        lambda: Sent([b"not signed"], {}, path="/health"),
        200,
        config={"paths": ["/hook"]},
        reaches_app=True,
        endpoint=False,
    ),
    Case(
        "guarded prefix",
        lambda: Sent([BODY], {}, path="/hooks/chat"),
        401,
        "missing_signature",
        config={"paths": ["/hooks/"]},
        endpoint=False,
    ),
]


def _run(adapter_name: str, case: Case) -> Answer:
    settings_ = {"secret": SECRET, **case.config}
    if adapter_name.startswith("webhook"):
        settings_.pop("paths", None)
    return ADAPTERS[adapter_name](WebhookConfig(**settings_), case.sent())


@pytest.mark.parametrize(
    ("adapter_name", "case"),
    [
        pytest.param(adapter_name, case, id=f"{adapter_name}-{case.name}")
        for case in CASES
        for adapter_name in ADAPTERS
        # @webhook guards every request it is given: path filters do not apply to it.
        if case.endpoint or not adapter_name.startswith("webhook")
    ],
)
def test_same_answer_from_every_adapter(adapter_name: str, case: Case) -> None:
    answer = _run(adapter_name, case)
    assert answer.status == case.status
    assert answer.reached_app is case.reaches_app
    if case.code is not None:
        assert answer.json["status"]["code"] != 0
        assert answer.json["status"]["message"].startswith(case.code + ":")
        assert answer.json["data"] == {"ids": []}
        assert answer.headers["content-type"] == "application/json"
    if answer.status == 500:
        assert answer.json["status"] == {"code": 500, "message": "internal error"}
        assert "boom" not in answer.body.decode()
    if case.status == 200 and case.code is None and case.name != "unguarded path untouched":
        sent = case.sent()
        (seen,) = answer.seen
        assert seen.body == sent.body
        assert seen.delivery is not None
        assert seen.delivery.body == sent.body
        assert answer.json["status"]["code"] == 0
        assert [item["id"] for item in answer.json["data"]["ids"]] == list(
            seen.delivery.payload.entity_ids
        )


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_rotation_reports_the_matching_key(adapter_name: str) -> None:
    config = WebhookConfig(secret={"2025": OLD_SECRET, "2026": SECRET})
    (seen,) = ADAPTERS[adapter_name](config, signed(BODY, secret=OLD_SECRET)).seen
    assert seen.delivery is not None
    assert (seen.delivery.verification.key_index, seen.delivery.verification.key_id) == (0, "2025")


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_client_disconnect_mid_body_never_reaches_the_app(adapter_name: str) -> None:
    sent = signed(BIG, chunks=[BIG[:100], BIG[100:200], BIG[200:]], disconnect_after=1)
    answer = ADAPTERS[adapter_name](WebhookConfig(secret=SECRET), sent)
    assert not answer.reached_app
    # ASGI sees the disconnect and answers nothing; WSGI sees a short read.
    assert answer.status in (0, 400)  # 0: no answer started
    if answer.status == 400:
        assert answer.json["status"]["message"].startswith("incomplete_body:")


@pytest.mark.parametrize("adapter_name", ADAPTERS)
@pytest.mark.parametrize(
    ("trace_header", "kept"),
    [
        (TRACE_ID, True),
        (TRACE_ID.upper(), True),
        (None, False),
        ("not-hex", False),
        ("0" * 32, False),
    ],
)
def test_trace_id_comes_back_on_every_response(
    adapter_name: str, trace_header: str | None, kept: bool
) -> None:
    headers = {"X-B3-TraceId": trace_header} if trace_header is not None else {}
    for sent in (signed(BODY, headers=headers), Sent([BODY], dict(headers))):
        answer = ADAPTERS[adapter_name](WebhookConfig(secret=SECRET), sent)
        returned = answer.headers["x-b3-traceid"]
        if kept:
            assert returned == TRACE_ID
        else:
            assert len(returned) == 32
            assert returned != trace_header
        if answer.seen:
            delivery = answer.seen[0].delivery
            assert delivery is not None
            assert delivery.trace.trace_id == returned


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_rejections_are_logged_with_code_and_trace_but_no_secret(
    adapter_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = signed(BODY, secret="wrong", headers={"X-B3-TraceId": TRACE_ID})
    with caplog.at_level(logging.WARNING, logger="hubsig"):
        answer = ADAPTERS[adapter_name](WebhookConfig(secret=SECRET), sent)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "signature_mismatch" in record.getMessage()
    assert TRACE_ID in record.getMessage()
    expected = hubsig.sign(BODY, SECRET)[5:]
    for text in (record.getMessage(), answer.body.decode()):
        assert SECRET not in text
        assert expected not in text


@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_handler_failure_is_logged_with_the_trace_id(
    adapter_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = signed(BODY, headers={"x-test-fail": "1", "X-B3-TraceId": TRACE_ID})
    with caplog.at_level(logging.ERROR, logger="hubsig"):
        answer = ADAPTERS[adapter_name](WebhookConfig(secret=SECRET), sent)
    assert answer.status == 500
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert TRACE_ID in record.getMessage()
    assert record.exc_info is not None


@pytest.mark.parametrize("adapter_name", ADAPTERS)
@settings(max_examples=25)
@given(
    body=st.binary(max_size=2048),
    secret=st.text(min_size=1).filter(lambda s: s == s.strip()),
    cut=st.integers(1, 64),
)
def test_app_receives_exactly_the_signed_bytes(
    adapter_name: str, body: bytes, secret: str, cut: int
) -> None:
    """Any body, valid JSON or not: what was signed is what is verified, replayed and handed on."""
    adapter: Adapter = ADAPTERS[adapter_name]
    chunks = [body[i : i + cut] for i in range(0, len(body), cut)] or [b""]
    answer = adapter(WebhookConfig(secret=secret), signed(body, secret=secret, chunks=chunks))
    try:
        hubsig.parse_events(body)
    except hubsig.MalformedPayload:
        assert answer.status == 400
        assert not answer.reached_app
    else:
        assert answer.status == 200
        (seen,) = answer.seen
        assert seen.body == body


@settings(max_examples=25)
@given(entities=st.lists(st.sampled_from(["STARTED", "FINISHED"]), max_size=6))
def test_app_receives_exactly_the_signed_json(entities: list[str]) -> None:
    document = {"operationId": "op", "data": {"entities": [{"event": e} for e in entities]}}
    body = json.dumps(document, indent=1).encode()
    for adapter in ADAPTERS.values():
        (seen,) = adapter(WebhookConfig(secret=SECRET), signed(body)).seen
        assert seen.body == body


def test_wsgi_generator_app_is_started_before_its_claims_settle() -> None:
    """A generator app calls start_response only when iterated: the middleware starts it,
    so a 200 completes the claims (and a 500 releases them), and the app's close() still runs."""
    from hubsig.stores import MemoryStore
    from hubsig.testing import make_events, signed_request
    from hubsig.wsgi import HubSignatureMiddleware

    closed: list[bool] = []
    statuses = iter(["500 Internal Server Error", "200 OK", "200 OK"])
    runs: list[str] = []

    class Body:
        def __init__(self, status: str, start_response: Any) -> None:
            self._status = status
            self._start = start_response

        def __iter__(self) -> Any:
            runs.append(self._status)
            self._start(self._status, [("Content-Type", "application/json")])
            yield b'{"status":{"code":0,"message":"OK"},"data":{"ids":[]}}'

        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        return Body(next(statuses), start_response)

    middleware = HubSignatureMiddleware(app, secret="s", store=MemoryStore())
    request = signed_request(make_events(1), "s")
    sent = Sent([request.body], dict(request.headers))
    answers = [call_wsgi(middleware, sent)[0] for _ in range(3)]
    assert answers == [500, 200, 200]
    assert runs == ["500 Internal Server Error", "200 OK"]  # the third: a duplicate
    assert closed == [True, True]


def test_a_scope_the_server_keeps_does_not_keep_the_delivery() -> None:
    """uvicorn keeps a connection's last scope until its next request: the middleware must
    not leave the delivery (and its body) there once the app has answered."""
    import asyncio

    from tests.harness import asgi_scope

    seen: list[hubsig.Delivery] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(hubsig.delivery_of(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = signed(events_body("a"))
    scope = asgi_scope(sent)
    body = {"type": "http.request", "body": sent.body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: Any) -> None:
        return None

    from hubsig.asgi import HubSignatureMiddleware

    middleware = HubSignatureMiddleware(app, secret=SECRET)
    asyncio.run(middleware(scope, receive, send))
    assert seen[0].payload.entity_ids == ("a",)  # the app had it while it ran
    with pytest.raises(hubsig.NotVerified, match="was answered"):
        hubsig.delivery_of(scope)  # and the kept scope has it no more, and says why
