"""@webhook: handler shapes, returned ids, per-event routes, and errors at decoration time."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import hubsig
from hubsig import ConfigurationError, Delivery, Event, EventsPayload, EventType, MediaType
from hubsig.config import WebhookConfig
from hubsig.endpoint import WebhookEndpoint
from tests.adapters import Sent, endpoint_asgi, endpoint_wsgi
from tests.adapters import _call_asgi as call_asgi
from tests.adapters import _call_wsgi as call_wsgi

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
) -> list[tuple[int | None, dict[str, Any]]]:
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
