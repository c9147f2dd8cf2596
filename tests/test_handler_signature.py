"""@webhook handlers checked at decoration: what each parameter gets, by its annotation,
its name or its place, and a ``TypeError`` naming the parameter hubsig cannot fill."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest

import hubsig
from hubsig import Delivery, Event, EventsPayload, WebhookEndpoint
from tests.harness import Sent, call_asgi, call_wsgi

SECRET = "signature-secret"
BODY = json.dumps(
    {
        "operationId": "op",
        "data": {"entities": [{"event": "STARTED", "entity": {"id": "c-1", "mediaType": "chat"}}]},
    }
).encode()


def _delivered(handler: Callable[..., Any]) -> list[int | None]:
    """The statuses of one signed delivery through the ASGI app, then the WSGI app, of a fresh
    endpoint each (one endpoint would rightly take the second as a duplicate)."""
    sent = Sent([BODY], {"X-Hub-Signature": hubsig.sign(BODY, SECRET)})
    asgi_status = asyncio.run(call_asgi(hubsig.webhook(secret=SECRET)(handler), sent))[0]
    wsgi_status = call_wsgi(hubsig.webhook(secret=SECRET)(handler).wsgi, sent)[0]
    return [asgi_status, wsgi_status]


def _kinds(*values: object) -> tuple[str, ...]:
    return tuple(type(value).__name__ for value in values)


# --- accepted: each parameter gets what its annotation, name or place says ---------------


def test_swapped_parameters_are_passed_by_their_annotations() -> None:
    """The new user's case: the delivery first, the payload second (was a 500 per request)."""
    got: list[tuple[str, ...]] = []

    def handle(delivery: hubsig.Delivery, payload: hubsig.EventsPayload) -> None:
        got.append(_kinds(delivery, payload))

    assert _delivered(handle) == [200, 200]
    assert got == [("Delivery", "EventsPayload")] * 2


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda got: lambda payload: got.append(_kinds(payload)), ("EventsPayload",)),
        (
            lambda got: lambda payload, delivery: got.append(_kinds(payload, delivery)),
            ("EventsPayload", "Delivery"),
        ),
        (
            lambda got: lambda delivery, payload: got.append(_kinds(delivery, payload)),
            ("Delivery", "EventsPayload"),
        ),
        (lambda got: lambda *args: got.append(_kinds(*args)), ("EventsPayload",)),
        (
            lambda got: lambda payload, dry_run=False: got.append(_kinds(payload)),
            ("EventsPayload",),
        ),
    ],
    ids=["payload", "payload-delivery", "delivery-named-first", "varargs", "default-left-alone"],
)
def test_unannotated_parameters_go_by_place_and_by_the_name_delivery(
    make: Callable[[list[Any]], Callable[..., Any]], expected: tuple[str, ...]
) -> None:
    got: list[Any] = []
    assert _delivered(make(got)) == [200, 200]
    assert got == [expected] * 2


def test_a_builtin_gets_the_payload() -> None:
    got: list[Any] = []
    assert _delivered(got.append) == [200, 200]
    assert _kinds(*got) == ("EventsPayload",) * 2


def test_annotated_forms_wherever_the_parameters_stand() -> None:
    got: list[tuple[str, ...]] = []

    def keyword_only(payload: EventsPayload, *, delivery: Delivery) -> None:
        got.append(_kinds(payload, delivery))

    def optional_after_a_skipped_default(
        payload: EventsPayload, dry_run: bool = False, trace: Delivery | None = None
    ) -> None:
        assert dry_run is False
        got.append(_kinds(payload, trace))

    def delivery_only(delivery: Delivery) -> None:
        got.append(_kinds(delivery))

    def anything(payload: Any, delivery: Delivery | None = None) -> None:
        got.append(_kinds(payload, delivery))

    for handler in (keyword_only, optional_after_a_skipped_default, delivery_only, anything):
        assert _delivered(handler) == [200, 200], handler.__name__
    assert got == [
        *[("EventsPayload", "Delivery")] * 4,
        *[("Delivery",)] * 2,
        *[("EventsPayload", "Delivery")] * 2,
    ]


def test_string_annotations_resolve_even_when_another_one_cannot() -> None:
    """``from __future__ import annotations`` (this file) makes every annotation a string;
    a return type imported only under TYPE_CHECKING must not hide the parameters' types."""
    got: list[tuple[str, ...]] = []

    def handle(delivery: Delivery, payload: EventsPayload) -> NotImportedHere:  # type: ignore[name-defined]  # noqa: F821
        got.append(_kinds(delivery, payload))

    assert _delivered(handle) == [200, 200]
    assert got == [("Delivery", "EventsPayload")] * 2


def test_annotations_that_cannot_be_evaluated_are_read_by_name() -> None:
    """A module that imports hubsig's types only under TYPE_CHECKING: the names are the clue."""
    namespace: dict[str, Any] = {}
    exec(  # noqa: S102 (a module whose annotations name types it never imported)
        "def handle(delivery: 'hubsig.Delivery | None', payload: 'Optional[EventsPayload]'):\n"
        "    got.append((type(delivery).__name__, type(payload).__name__))\n",
        namespace,
    )
    got: list[tuple[str, str]] = []
    namespace["got"] = got
    assert _delivered(namespace["handle"]) == [200, 200]
    assert got == [("Delivery", "EventsPayload")] * 2


def test_partials_and_callable_objects_are_read_through() -> None:
    got: list[tuple[str, ...]] = []

    def tagged(tag: str, delivery: Delivery, payload: EventsPayload) -> None:
        got.append((tag, *_kinds(delivery, payload)))

    class Handler:
        async def __call__(self, delivery: Delivery, payload: EventsPayload) -> None:
            got.append(("object", *_kinds(delivery, payload)))

    assert _delivered(functools.partial(tagged, "partial")) == [200, 200]
    assert _delivered(Handler()) == [200, 200]
    assert (
        got
        == [("partial", "Delivery", "EventsPayload")] * 2
        + [("object", "Delivery", "EventsPayload")] * 2
    )


def test_route_handlers_follow_the_same_rules_with_the_event() -> None:
    got: list[tuple[str, ...]] = []

    def build() -> WebhookEndpoint:
        endpoint = WebhookEndpoint(config=hubsig.WebhookConfig(secret=SECRET))

        @endpoint.on("STARTED")
        def started(delivery: Delivery, event: Event) -> None:
            got.append(_kinds(delivery, event))

        return endpoint

    sent = Sent([BODY], {"X-Hub-Signature": hubsig.sign(BODY, SECRET)})
    assert asyncio.run(call_asgi(build(), sent))[0] == 200
    assert call_wsgi(build().wsgi, sent)[0] == 200
    assert got == [("Delivery", "Event")] * 2


# --- refused at decoration, naming the parameter --------------------------------------------


def request_response(request, response):  # type: ignore[no-untyped-def]
    """What a web framework's user might write: nothing hubsig could pass."""


def wrong_type(payload: dict[str, Any]) -> None: ...


def extra_parameter(payload: EventsPayload, delivery: Delivery, retries: int) -> None: ...


def two_deliveries(first: Delivery, second: Delivery) -> None: ...


def event_for_the_payload(event: Event) -> None: ...


@pytest.mark.parametrize(
    ("handler", "named"),
    [
        (request_response, "'response'"),
        (wrong_type, "'payload'"),
        (extra_parameter, "'retries'"),
        (two_deliveries, "'first' and 'second' all ask for the Delivery"),
        (event_for_the_payload, "'event' is annotated Event: the main handler gets the"),
    ],
    ids=["request-response", "wrong-type", "extra", "twice", "event-in-main"],
)
def test_a_parameter_hubsig_cannot_fill_is_refused_naming_it(
    handler: Callable[..., Any], named: str
) -> None:
    with pytest.raises(TypeError) as refused:
        hubsig.webhook(secret=SECRET)(handler)
    message = str(refused.value)
    assert named in message
    assert handler.__name__ in message
    assert "annotated EventsPayload" in message  # what is allowed
    assert "annotated Delivery, or else named delivery" in message


def test_a_route_handler_annotated_with_the_payload_is_refused() -> None:
    endpoint = WebhookEndpoint(config=hubsig.WebhookConfig(secret=SECRET))
    with pytest.raises(TypeError, match="'payload' is annotated EventsPayload: a handler given"):

        @endpoint.on("STARTED")
        def started(payload: EventsPayload) -> None: ...
