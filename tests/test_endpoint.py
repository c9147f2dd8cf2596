"""@webhook: handler shapes, returned ids, per-event routes, and errors at decoration time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

import hubsig
from hubsig import ConfigurationError, Delivery, Event, EventsPayload, EventType, MediaType
from hubsig._config import WebhookConfig
from hubsig._endpoint import WebhookEndpoint
from tests.adapters import endpoint_asgi, endpoint_wsgi
from tests.harness import Sent, call_asgi, call_wsgi

SECRET = "endpoint-secret"
DOCUMENT = {
    "operationId": "op",
    "data": {
        "entities": [
            {"event": "STARTED", "entity": {"id": "c-1", "mediaType": "chat"}},
            {"event": "STARTED", "entity": {"id": "e-1", "mediaType": "email"}},
            {"event": "FINISHED", "entity": {"id": "c-1", "mediaType": "chat"}},
            {"event": "STARTED", "entity": {"id": "c-2", "mediaType": "chat"}},
        ]
    },
}
BODY = json.dumps(DOCUMENT).encode()


def signed(body: bytes = BODY) -> Sent:
    return Sent([body], {"X-Hub-Signature": hubsig.sign(body, SECRET)})


def both_protocols(
    build: Callable[[], WebhookEndpoint],
) -> list[tuple[int, dict[str, Any]]]:
    """The same delivery through a fresh endpoint's ASGI app, then another's WSGI app.

    Fresh endpoints, because one endpoint would rightly treat the second as a duplicate.
    """
    import asyncio

    answers = []
    for status, _, body in (
        asyncio.run(call_asgi(build(), signed())),
        call_wsgi(build().wsgi, signed()),
    ):
        answers.append((status, json.loads(body)))
    return answers


def test_default_answer_lists_every_entity_id() -> None:
    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        def handle(payload: EventsPayload) -> None:
            # c-1 STARTED appears once; its FINISHED is another event.
            assert len(payload.events) == 4

        return handle

    for status, body in both_protocols(build):
        assert status == 200
        assert body == {
            "status": {"code": 0, "message": "OK"},
            "data": {"ids": [{"id": i} for i in ("c-1", "e-1", "c-1", "c-2")]},
        }


def test_handler_may_return_the_ids_it_handled() -> None:
    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        async def handle(payload: EventsPayload) -> list[str]:
            return ["c-2"]

        return handle

    for status, body in both_protocols(build):
        assert (status, body["data"]["ids"]) == (200, [{"id": "c-2"}])


def test_routes_are_called_once_per_matching_event() -> None:
    calls: list[tuple[str, str | None]] = []

    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        def handle(payload: EventsPayload, delivery: Delivery) -> None:
            calls.append(("main", payload.operation_id))
            assert hubsig.current_trace() == delivery.trace

        @handle.on("STARTED", media_type="chat")
        async def chat_started(event: Event) -> None:
            assert event.entity is not None
            calls.append(("chat-started", event.entity.id))

        @handle.on(EventType.FINISHED)
        def finished(event: Event, delivery: Delivery) -> None:
            assert event.entity is not None
            calls.append(("finished", event.entity.id))
            assert hubsig.current_trace() == delivery.trace

        @handle.on(media_type=MediaType.EMAIL)
        def email(event: Event) -> None:
            assert event.entity is not None
            calls.append(("email", event.entity.id))

        return handle

    one_delivery = [
        ("main", "op"),
        ("chat-started", "c-1"),
        ("email", "e-1"),
        ("finished", "c-1"),
        ("chat-started", "c-2"),
    ]
    assert [status for status, _ in both_protocols(build)] == [200, 200]  # ASGI, then WSGI
    assert calls == one_delivery * 2


def test_an_endpoint_of_routes_only() -> None:
    seen: list[str] = []

    def build() -> WebhookEndpoint:
        endpoint = WebhookEndpoint(config=WebhookConfig(secret=SECRET))

        @endpoint.on("FINISHED")
        def finished(event: Event) -> None:
            assert event.entity is not None
            assert event.entity.id is not None
            seen.append(event.entity.id)

        return endpoint

    for status, _ in both_protocols(build):
        assert status == 200
    assert seen == ["c-1", "c-1"]


def test_a_failing_route_answers_500_for_the_whole_delivery() -> None:
    def build() -> WebhookEndpoint:
        endpoint = WebhookEndpoint(config=WebhookConfig(secret=SECRET))

        @endpoint.on("STARTED", media_type="email")
        def fail(event: Event) -> None:
            raise RuntimeError("secret detail")

        return endpoint

    for status, body in both_protocols(build):
        assert status == 500
        assert body["status"] == {"code": 500, "message": "internal error"}


def test_refused_delivery_never_reaches_handlers() -> None:
    called: list[str] = []

    @hubsig.webhook(secret=SECRET)
    def handle(payload: EventsPayload) -> None:
        called.append("main")

    @handle.on("STARTED")
    def started(event: Event) -> None:
        called.append("route")

    wrong = Sent([BODY], {"X-Hub-Signature": hubsig.sign(BODY, "other")})
    config = WebhookConfig(secret=SECRET)
    assert endpoint_asgi(config, wrong).status == 401
    assert endpoint_wsgi(config, wrong).status == 401
    import asyncio

    assert asyncio.run(call_asgi(handle, wrong))[0] == 401
    assert call_wsgi(handle.wsgi, wrong)[0] == 401
    assert called == []


@pytest.mark.parametrize(
    "settings",
    [
        {"secret": ""},
        {"secret": []},
        {"secret": SECRET, "max_body_size": 0},
        {"secret": SECRET, "algorithms": ["md5"]},
        {"secret": SECRET, "header_name": "X Hub"},
        {"secret": SECRET, "api_keys": [""]},
    ],
)
def test_bad_settings_fail_at_decoration_not_at_the_first_request(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        hubsig.webhook(**settings)


def test_endpoint_refuses_a_path_filter() -> None:
    with pytest.raises(ConfigurationError, match="no paths="):
        hubsig.webhook(secret=SECRET, paths=["/hook"])


# --- handlers checked once, at decoration -------------------------------------------------


def test_a_bare_decorator_is_a_type_error_at_decoration() -> None:
    with pytest.raises(TypeError, match="with parentheses"):

        @hubsig.webhook  # type: ignore[arg-type]
        def handle(payload: EventsPayload) -> None: ...


def test_an_unknown_setting_names_the_decorator_and_the_closest_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"hubsig.webhook: .*'secrett'.*'secret'"):
        hubsig.webhook(secrett=SECRET)  # type: ignore[call-arg]


def test_the_delivery_goes_only_to_a_second_parameter_without_a_default() -> None:
    seen: list[object] = []

    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        def handle(payload: EventsPayload, dry_run: bool = False) -> None:
            seen.append(dry_run)

        return handle

    assert [status for status, _ in both_protocols(build)] == [200, 200]
    assert seen == [False, False]


def test_a_second_parameter_annotated_delivery_gets_it_even_with_a_default() -> None:
    seen: list[object] = []

    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        def handle(payload: EventsPayload, delivery: Delivery | None = None) -> None:
            seen.append(type(delivery))

        return handle

    both_protocols(build)
    assert seen == [Delivery, Delivery]


@pytest.mark.parametrize(
    "handler",
    [
        lambda: None,
        lambda payload, delivery, extra: None,
        lambda payload, *, required: None,
    ],
    ids=["no-parameter", "three-required", "required-keyword"],
)
def test_a_handler_hubsig_cannot_call_is_refused_at_decoration(handler: Any) -> None:
    with pytest.raises(TypeError, match="payload"):
        hubsig.webhook(secret=SECRET)(handler)


def test_async_callable_objects_and_partials_are_awaited() -> None:
    calls: list[str] = []

    class Handler:
        async def __call__(self, payload: EventsPayload) -> None:
            calls.append("object")

    async def tagged(tag: str, payload: EventsPayload) -> None:
        calls.append(tag)

    import functools

    for handler in (Handler(), functools.partial(tagged, "partial")):
        endpoint = hubsig.webhook(secret=SECRET)(handler)
        status, _, _ = asyncio.run(call_asgi(endpoint, signed()))
        assert status == 200
    assert calls == ["object", "partial"]


@pytest.mark.parametrize(
    "returned",
    ["id-1", b"id-1", {"id": "c-1"}, True, 7, ["c-1", 2]],
    ids=["str", "bytes", "dict", "bool", "int", "mixed-list"],
)
def test_a_wrong_return_value_releases_the_claims_and_answers_500(
    returned: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked before the claims complete: the sender's retry runs the handler again."""
    calls: list[int] = []
    answers = [returned, None]

    def handle(payload: EventsPayload) -> object:
        calls.append(1)
        return answers[len(calls) - 1]

    endpoint = hubsig.webhook(secret=SECRET)(handle)
    first, _, body = asyncio.run(call_asgi(endpoint, signed()))
    assert first == 500
    assert json.loads(body)["status"]["code"] == 500
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("handle" in r.getMessage() and "must return None" in r.getMessage() for r in logged)
    retry, _, _ = asyncio.run(call_asgi(endpoint, signed()))
    assert retry == 200
    assert len(calls) == 2


def test_an_events_response_is_the_answer() -> None:
    def build() -> WebhookEndpoint:
        @hubsig.webhook(secret=SECRET)
        def handle(payload: EventsPayload) -> hubsig.EventsResponse:
            return hubsig.events_response(["c-1"], message="taken")

        return handle

    for status, body in both_protocols(build):
        assert (status, body["status"]["message"], body["data"]["ids"]) == (
            200,
            "taken",
            [{"id": "c-1"}],
        )


def test_an_events_response_with_a_nonzero_code_is_a_failure_and_releases() -> None:
    calls: list[int] = []

    def handle(payload: EventsPayload) -> hubsig.EventsResponse | None:
        calls.append(1)
        return hubsig.events_response(code=7, message="later") if len(calls) == 1 else None

    endpoint = hubsig.webhook(secret=SECRET)(handle)
    status, _, body = asyncio.run(call_asgi(endpoint, signed()))
    assert (status, json.loads(body)["status"]) == (500, {"code": 7, "message": "later"})
    assert asyncio.run(call_asgi(endpoint, signed()))[0] == 200


@pytest.mark.parametrize(
    ("filters", "hint"),
    [
        ({"event_type": "STARTD"}, "known: STARTED, FINISHED"),
        ({"event_type": "started"}, "did you mean 'STARTED'"),
        ({"media_type": "Chat"}, "did you mean 'chat'"),
        ({"interaction_subtype": "whatsapp"}, "did you mean 'WhatsApp'"),
    ],
)
def test_route_filters_that_could_never_match_are_refused(
    filters: dict[str, str], hint: str
) -> None:
    endpoint = WebhookEndpoint(config=WebhookConfig(secret=SECRET))
    with pytest.raises(ValueError, match=hint):
        endpoint.on(**filters)  # type: ignore[arg-type]
    endpoint.on(**filters, allow_unknown=True)


def test_an_async_store_cannot_serve_the_wsgi_app() -> None:
    class AsyncStore:
        blocking = False

        async def claim(self, keys: Any, lease: float, token: str) -> list[hubsig.Claim]:
            return []

        async def complete(self, keys: Any, retention: float, token: str) -> None: ...

        async def release(self, keys: Any, token: str) -> None: ...

        async def renew(self, keys: Any, lease: float, token: str) -> None: ...

    endpoint = hubsig.webhook(secret=SECRET, store=AsyncStore())(lambda payload: None)
    with pytest.raises(ConfigurationError, match="asyncio store"):
        endpoint.wsgi  # noqa: B018 (the property is what is tested)
