"""DeliveryCheck, declared_length and rejection: every check of one request, without I/O."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

import hubsig
from hubsig import (
    BodyTimeout,
    BodyTooLarge,
    Headers,
    InvalidApiKey,
    MalformedPayload,
    MalformedRequest,
    MalformedSignature,
    MethodNotAllowed,
    MissingSignature,
    NoSecret,
    ReceiverBusy,
    RequestView,
    SignatureMismatch,
    TraceContext,
    Verification,
    WebhookConfig,
    WebhookError,
)
from hubsig import _body as body_module
from hubsig._check import FREE_BYTES, DeliveryCheck, declared_length
from hubsig._receiver import Receiver
from hubsig._replies import rejection
from hubsig.testing import make_events
from tests.conftest import use_static_secrets

SECRET = "receiver-secret"
LIMIT = FREE_BYTES + 1000
BODY = b'{"operationId":"op-1","data":{"entities":[{"event":"FINISHED","entity":{"id":"e-1"}}]}}'


def _receiver(**settings: Any) -> Receiver:
    """A receiver (its budget, its verifiers) for these settings."""
    base: dict[str, Any] = {"secret": SECRET, "max_body_size": LIMIT}
    return Receiver.of(WebhookConfig(**{**base, **settings}))


def _check(
    receiver: Receiver,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    method: str = "POST",
    now: float = 0.0,
) -> DeliveryCheck:
    view = RequestView(method, "/hook", Headers(headers or {}))
    return DeliveryCheck(receiver, view, TraceContext.new(), now)


def _signed(body: bytes, length: bool = True) -> dict[str, str]:
    headers = {"X-Hub-Signature": hubsig.sign(body, SECRET)}
    if length:
        headers["Content-Length"] = str(len(body))
    return headers


def _feed(check: DeliveryCheck, body: bytes, size: int = 7) -> None:
    for start in range(0, len(body), size):
        check.feed(body[start : start + size])


# --- the whole flow --------------------------------------------------------------------------


def test_a_signed_delivery_is_verified_then_parsed() -> None:
    receiver = _receiver()
    check = _check(receiver, _signed(BODY))
    use_static_secrets(check)
    _feed(check, BODY)
    delivery = check.finish(BODY)
    assert delivery.verification == Verification("sha1", 0)
    assert delivery.payload.entity_ids == ("e-1",)
    assert delivery.body == BODY
    assert delivery.trace is check.trace
    check.release()
    assert receiver.budget.used == 0


def test_an_async_resolver_is_answered_by_awaiting_what_resolve_gives() -> None:
    async def resolver(request: RequestView) -> str:
        return SECRET if request.path == "/hook" else "other"

    check = _check(_receiver(secret=resolver), _signed(BODY))
    check.use_secrets(asyncio.run(check.resolve()))  # type: ignore[arg-type]
    check.feed(BODY)
    assert check.finish(BODY).verification.key_index == 0


def test_the_signature_is_checked_before_the_body_is_parsed() -> None:
    garbage = b"not json at all"
    check = _check(_receiver(), {"X-Hub-Signature": hubsig.sign(garbage, "wrong")})
    use_static_secrets(check)
    check.feed(garbage)
    with pytest.raises(SignatureMismatch):
        check.finish(garbage)
    signed = _check(_receiver(), _signed(garbage))
    use_static_secrets(signed)
    signed.feed(garbage)
    with pytest.raises(MalformedPayload):
        signed.finish(garbage)


def test_a_tampered_body_is_refused() -> None:
    check = _check(_receiver(), _signed(BODY, length=False))
    use_static_secrets(check)
    _feed(check, BODY.replace(b"e-1", b"e-2"))
    with pytest.raises(SignatureMismatch):
        check.finish(BODY.replace(b"e-1", b"e-2"))


def test_the_body_cannot_be_fed_before_the_signature_header_is_checked() -> None:
    check = _check(_receiver())
    with pytest.raises(RuntimeError, match=r"^DeliveryCheck\.use_secrets must be called"):
        check.feed(b"{}")
    with pytest.raises(RuntimeError, match=r"^DeliveryCheck\.use_secrets must be called"):
        check.finish(b"{}")


@pytest.mark.parametrize(
    ("headers", "error", "message"),
    [
        ({}, MissingSignature, "the signature header is missing"),
        (
            [("x-hub-signature", hubsig.sign(BODY, SECRET))] * 2,
            MalformedSignature,
            "the request carries more than one signature header",
        ),
    ],
)
def test_the_signature_header_is_checked_before_any_body(
    headers: Any, error: type[WebhookError], message: str
) -> None:
    check = _check(_receiver(), headers)
    with pytest.raises(error) as raised:
        use_static_secrets(check)
    assert raised.value.message == message


def test_a_resolver_without_a_secret_refuses_the_delivery() -> None:
    check = _check(_receiver(secret=lambda request: None), _signed(BODY))
    with pytest.raises(NoSecret) as raised:
        use_static_secrets(check)
    assert raised.value.message == "no secret is configured for this request"


# --- before the body: method, API key, declared length -----------------------------------------


def test_a_wrong_method_is_refused_before_anything_else() -> None:
    receiver = _receiver(api_keys=["k"])
    with pytest.raises(MethodNotAllowed) as raised:
        _check(receiver, {"Content-Length": str(LIMIT + 1)}, method="GET")
    assert raised.value.headers == (("allow", "POST"),)
    with pytest.raises(InvalidApiKey):
        _check(receiver, {"Content-Length": str(LIMIT + 1)})
    assert receiver.budget.used == 0


def test_a_declared_length_up_to_the_limit_is_accepted_and_one_more_is_refused() -> None:
    receiver = _receiver()
    check = _check(receiver, {"Content-Length": str(LIMIT)})
    assert receiver.budget.used == LIMIT - FREE_BYTES
    check.release()
    with pytest.raises(BodyTooLarge) as raised:
        _check(receiver, {"Content-Length": str(LIMIT + 1)})
    assert raised.value.message == f"the body is larger than this receiver's limit of {LIMIT} bytes"
    assert receiver.budget.used == 0


@pytest.mark.parametrize("size", [0, 1, FREE_BYTES - 1, FREE_BYTES, FREE_BYTES + 1, LIMIT])
def test_a_declared_body_is_charged_once_up_front_past_its_free_bytes(size: int) -> None:
    receiver = _receiver()
    body = b" " * size
    check = _check(receiver, _signed(body))
    charged = max(0, size - FREE_BYTES)
    assert receiver.budget.used == charged
    use_static_secrets(check)
    for start in range(0, size, 300):
        check.feed(body[start : start + 300])
        assert receiver.budget.used == charged
    check.release()
    assert receiver.budget.used == 0
    check.release()  # idempotent: nothing is given back twice
    assert receiver.budget.used == 0


def test_a_chunked_body_is_charged_as_it_arrives_and_given_back_whole() -> None:
    receiver = _receiver()
    check = _check(receiver, {"X-Hub-Signature": hubsig.sign(b"x" * LIMIT, SECRET)})
    use_static_secrets(check)
    fed = 0
    for size in (FREE_BYTES - 10, 5, 10, 300, 695):
        check.feed(b"x" * size)
        fed += size
        assert receiver.budget.used == max(0, fed - FREE_BYTES)
    assert fed == LIMIT
    with pytest.raises(BodyTooLarge) as raised:
        check.feed(b"x")
    assert raised.value.message == f"the body is larger than this receiver's limit of {LIMIT} bytes"
    check.release()
    assert receiver.budget.used == 0


def test_a_chunked_body_past_the_limit_is_refused_without_a_length() -> None:
    receiver = _receiver()
    check = _check(receiver, _signed(b"", length=False))
    use_static_secrets(check)
    check.feed(b"x" * LIMIT)
    with pytest.raises(BodyTooLarge):
        check.feed(b"x")


def test_a_full_budget_asks_the_sender_to_retry() -> None:
    receiver = _receiver()
    assert receiver.budget.reserve(receiver.budget.limit - 10)
    with pytest.raises(ReceiverBusy) as raised:
        _check(receiver, {"Content-Length": str(FREE_BYTES + 11)})
    assert raised.value.headers == (("retry-after", "1"),)
    assert raised.value.message == (
        "this receiver is reading as many bodies as it may hold; retry shortly"
    )
    assert receiver.budget.used == receiver.budget.limit - 10
    fits = _check(receiver, {"Content-Length": str(FREE_BYTES + 10)})
    assert receiver.budget.used == receiver.budget.limit
    fits.release()
    chunked = _check(receiver, _signed(b"", length=False))
    use_static_secrets(chunked)
    chunked.feed(b"x" * (FREE_BYTES + 10))
    with pytest.raises(ReceiverBusy):
        chunked.feed(b"x")
    chunked.release()
    assert receiver.budget.used == receiver.budget.limit - 10


# --- the deadline ------------------------------------------------------------------------------


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_the_body_must_arrive_within_body_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(1000.0)
    monkeypatch.setattr(body_module, "time", clock)
    check = _check(_receiver(body_timeout=2.5), _signed(BODY), now=clock.now)
    assert check.deadline == 1002.5
    use_static_secrets(check)
    clock.now = 1002.5
    chunks = [BODY]
    assert body_module.read_body_sync(check, lambda: (chunks.pop(), not chunks)) == BODY
    clock.now = 1002.5001  # exactly at the deadline was still in time; a moment after is not
    late = _check(_receiver(body_timeout=2.5), _signed(BODY), now=1000.0)
    use_static_secrets(late)
    chunks = [BODY]
    with pytest.raises(BodyTimeout) as raised:
        body_module.read_body_sync(late, lambda: (chunks.pop(), not chunks))
    assert raised.value.message == "the body did not arrive within 2.5 seconds"
    assert check.timed_out().status == 408


# --- declared_length ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "length"),
    [
        ([], None),
        (["0"], 0),
        (["42"], 42),
        ([" 42\t"], 42),
        (["007"], 7),
        (["42", "42"], 42),
        (["42", " 42"], 42),
        (["9" * 18], 10**18 - 1),
    ],
)
def test_declared_length(values: list[str], length: int | None) -> None:
    assert declared_length(Headers([("Content-Length", value) for value in values])) == length


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["42", "43"], "the request declares more than one Content-Length"),
        ([""], "the Content-Length header is not a number of bytes"),
        (["-1"], "the Content-Length header is not a number of bytes"),
        (["+5"], "the Content-Length header is not a number of bytes"),
        (["1 2"], "the Content-Length header is not a number of bytes"),
        (["12a"], "the Content-Length header is not a number of bytes"),
        (["0x10"], "the Content-Length header is not a number of bytes"),
        (["1e3"], "the Content-Length header is not a number of bytes"),
        (["4_2"], "the Content-Length header is not a number of bytes"),
        (["\u00b2"], "the Content-Length header is not a number of bytes"),
        (["\u0664\u0662"], "the Content-Length header is not a number of bytes"),
        (["1" * 19], "the Content-Length header is not a number of bytes"),
        (["1" * 5000], "the Content-Length header is not a number of bytes"),
    ],
)
def test_a_malformed_content_length_is_a_400_never_a_guess(values: list[str], message: str) -> None:
    with pytest.raises(MalformedRequest) as raised:
        declared_length(Headers([("content-length", value) for value in values]))
    assert (raised.value.status, raised.value.message) == (400, message)


# --- rejection ---------------------------------------------------------------------------------


def _answer(error: WebhookError, **settings: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    trace = TraceContext.new()
    reply = rejection(error, trace, _receiver(**settings).config.acknowledge_rejections)
    headers = dict(reply.headers)
    assert len(headers) == len(reply.headers)
    assert headers["x-b3-traceid"] == trace.trace_id
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(reply.body))
    return reply.status, headers, json.loads(reply.body)


def test_a_refusal_answers_its_status_and_says_why() -> None:
    status, headers, body = _answer(SignatureMismatch("the signature does not match the body"))
    assert status == 401
    assert set(headers) == {"content-type", "content-length", "x-b3-traceid"}
    assert body == {
        "status": {
            "code": 401,
            "message": "signature_mismatch: the signature does not match the body",
        },
        "data": {"ids": []},
    }


def test_a_refusal_keeps_the_errors_headers_and_closes_when_it_must() -> None:
    status, headers, body = _answer(ReceiverBusy("busy", headers=(("retry-after", "1"),)))
    assert status == 503
    assert (headers["retry-after"], headers["connection"]) == ("1", "close")
    assert body["status"]["code"] == 503
    status, headers, _ = _answer(MethodNotAllowed("no", headers=(("allow", "POST"),)))
    assert (status, headers["allow"]) == (405, "POST")
    assert "connection" not in headers
    status, headers, _ = _answer(BodyTooLarge("big"))
    assert (status, headers["connection"]) == (413, "close")


def test_acknowledged_rejections_answer_200_except_when_the_sender_should_retry() -> None:
    status, _, body = _answer(SignatureMismatch("m"), acknowledge_rejections=True)
    assert (status, body["status"]["code"]) == (200, 401)
    for transient in (ReceiverBusy("busy"), BodyTimeout("slow")):
        status, _, body = _answer(transient, acknowledge_rejections=True)
        assert status == body["status"]["code"] == transient.status


def test_refusals_are_logged_with_code_status_and_trace(caplog: pytest.LogCaptureFixture) -> None:
    trace = TraceContext.new()
    with caplog.at_level(logging.INFO, logger="hubsig"):
        rejection(SignatureMismatch("m"), trace, False)
        rejection(MethodNotAllowed("m"), trace, False)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            f"refused delivery: signature_mismatch (HTTP 401) trace_id={trace.trace_id}",
        ),
        (
            logging.INFO,
            f"refused delivery: method_not_allowed (HTTP 405) trace_id={trace.trace_id}",
        ),
    ]


# --- what the check tells an observer (telemetry), and what it says ------------------------------


class _Watch:
    """A ``CheckObserver`` that writes down what it is told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Any]] = []

    def verifying(self) -> None:
        self.told.append(("verifying", None))

    def verified(self, verification: Verification | None) -> None:
        self.told.append(("verified", verification))

    def parsed(self, payload: Any) -> None:
        self.told.append(("parsed", payload))


def test_an_observer_is_told_the_verification_and_the_payload_of_the_one_decision() -> None:
    check = _check(_receiver(), _signed(BODY))
    watch = check.observer = _Watch()
    use_static_secrets(check)
    check.feed(BODY)
    delivery = check.finish(BODY)
    assert watch.told == [
        ("verifying", None),
        ("verified", delivery.verification),
        ("parsed", delivery.payload),
    ]


def test_an_observer_is_told_of_a_refused_signature_and_nothing_is_parsed() -> None:
    check = _check(_receiver(), {"X-Hub-Signature": hubsig.sign(BODY, "wrong")})
    watch = check.observer = _Watch()
    use_static_secrets(check)
    check.feed(BODY)
    with pytest.raises(SignatureMismatch):
        check.finish(BODY)
    assert watch.told == [("verifying", None), ("verified", None)]


def test_a_path_with_a_control_character_is_refused_saying_so() -> None:
    view = RequestView("POST", "/hook\n", Headers({}))
    with pytest.raises(MalformedRequest) as raised:
        DeliveryCheck(_receiver(), view, TraceContext.new(), 0.0)
    assert raised.value.message == "the request path holds a control character"


def test_too_many_events_are_refused_saying_how_many_and_the_limit() -> None:
    body = make_events(3).to_json()
    check = _check(_receiver(max_events=2), _signed(body))
    use_static_secrets(check)
    check.feed(body)
    with pytest.raises(hubsig.TooManyEvents) as raised:
        check.finish(body)
    assert raised.value.message == (
        "the delivery holds 3 events, more than this receiver's limit of 2"
    )


def test_the_receivers_verifiers_say_in_their_repr_whether_the_secret_is_static() -> None:
    assert repr(_receiver().verifiers) == "Verifiers(static=True, built=0)"
    resolving = _receiver(secret=lambda request: SECRET)
    resolving.verifiers.verifier_for(SECRET)
    assert repr(resolving.verifiers) == "Verifiers(static=False, built=1)"
    assert SECRET not in repr(resolving.verifiers)
