"""parse_events: typed models from the raw body; each failure a MalformedPayload saying where."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import (
    Entity,
    Event,
    EventsPayload,
    EventType,
    InteractionSubtype,
    MalformedPayload,
    MediaType,
    parse_events,
)
from hubsig._payload import _build, _explain


def _body(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_seed_example_parses_into_typed_models(seed_body: bytes) -> None:
    payload = parse_events(seed_body)
    assert payload == EventsPayload(
        operation_id="f6c49d91-926b-4473-b2f3-8d8fd295c968",
        events=(
            Event(
                EventType.FINISHED,
                Entity(
                    id="8e09e19f-b8ba-4db0-b6e7-dfc8a7776176",
                    media_type=MediaType.CHAT,
                    interaction_subtype=InteractionSubtype.INBOUND_NEW,
                    self_uri="https://nexus.example/nexus/v3/chat/sessions/49a0ed5c-77b8-4091-a0c2-1d904ff709b8",
                ),
            ),
        ),
    )
    assert payload.entity_ids == ("8e09e19f-b8ba-4db0-b6e7-dfc8a7776176",)


def test_models_are_immutable_records(seed_body: bytes) -> None:
    payload = parse_events(seed_body)
    with pytest.raises(AttributeError):
        payload.operation_id = "other"  # type: ignore[misc]
    assert not hasattr(payload, "__dict__")
    assert not hasattr(payload.events[0].entity, "__dict__")


def test_every_field_is_optional() -> None:
    assert parse_events(b"{}") == EventsPayload(None, ())
    document = {"data": {"entities": [{}, {"entity": {}}, {"event": None, "entity": None}]}}
    payload = parse_events(_body(document))
    assert payload.events == (Event(None, None), Event(None, Entity()), Event(None, None))
    assert payload.entity_ids == ()


def test_unknown_values_are_kept_as_strings_unless_strict() -> None:
    document = {
        "operationId": "op",
        "data": {
            "entities": [
                {
                    "event": "PAUSED",
                    "entity": {"id": "1", "mediaType": "voice", "interactionSubtype": "Signal"},
                }
            ]
        },
    }
    event = parse_events(_body(document)).events[0]
    assert event.event_type == "PAUSED"
    assert not isinstance(event.event_type, EventType)
    assert event.entity == Entity(id="1", media_type="voice", interaction_subtype="Signal")
    with pytest.raises(MalformedPayload, match=r"data\.entities\[0\]\.event has an unknown value"):
        parse_events(_body(document), strict=True)


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"data": {"entities": [{"entity": {"id": "1"}}]}}, "operationId is required"),
        ({"operationId": "o", "data": {"entities": [{"event": "STARTED"}]}}, r"\[0\]\.entity is"),
        (
            {"operationId": "o", "data": {"entities": [{"entity": {"id": "1"}}, {"entity": {}}]}},
            r"data\.entities\[1\]\.entity\.id is required",
        ),
    ],
)
def test_strict_refuses_missing_ids(document: Any, where: str) -> None:
    parse_events(_body(document))
    with pytest.raises(MalformedPayload, match=where):
        parse_events(_body(document), strict=True)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('{"operationId": "x"}'.encode("utf-16"), "not UTF-8"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b"[]", "must be a JSON object, not an array"),
        (b"null", "not null"),
        (b'{"operationId": 5}', "operationId must be a string, not a number"),
        (b'{"data": []}', "data must be an object, not an array"),
        (b'{"data": {"entities": {}}}', r"data\.entities must be an array"),
        (b'{"data": {"entities": [1, 2, 3, "x"]}}', r"data\.entities\[0\] must be an object"),
        (
            b'{"data": {"entities": [{}, {}, {}, {"entity": {"id": 7}}]}}',
            r"data\.entities\[3\]\.entity\.id must be a string, not a number",
        ),
        (
            b'{"data": {"entities": [{"event": true}]}}',
            r"\[0\]\.event must be a string, not a bool",
        ),
        (b'{"operationId": NaN}', "unsupported number"),
        (b'{"n": ' + b"9" * 5000 + b"}", "unsupported number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(MalformedPayload, match=message) as raised:
        parse_events(body)
    assert raised.value.status == 400


def test_repeated_keys_keep_the_last_value_unless_strict() -> None:
    body = b'{"operationId": "a", "operationId": "b"}'
    assert parse_events(body).operation_id == "b"
    with pytest.raises(MalformedPayload, match="repeats the key 'operationId'"):
        parse_events(body, strict=True)
    nested = b'{"operationId": "a", "data": {"entities": [{"entity": {"id": "1", "id": "2"}}]}}'
    with pytest.raises(MalformedPayload, match="repeats the key 'id'"):
        parse_events(nested, strict=True)


@given(st.binary())
def test_arbitrary_bytes_raise_only_malformed_payload(body: bytes) -> None:
    with contextlib.suppress(MalformedPayload):
        parse_events(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "operationId": json_values,
            "data": st.fixed_dictionaries(
                {},
                optional={
                    "entities": st.lists(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "event": json_values,
                                "entity": st.dictionaries(
                                    st.sampled_from(["id", "mediaType", "selfUri", "other"]),
                                    json_values,
                                )
                                | json_values,
                            },
                        )
                        | json_values
                    )
                    | json_values
                },
            )
            | json_values,
        },
    ),
    st.booleans(),
)
def test_arbitrary_json_shapes_raise_only_malformed_payload(document: Any, strict: bool) -> None:
    with contextlib.suppress(MalformedPayload):
        parse_events(_body(document), strict=strict)
    # The fast path and the path-aware explainer must agree on every document.
    fast = _build(document, strict) if isinstance(document, dict) else None
    if fast is not None:
        assert _explain(document, strict) == fast
    elif isinstance(document, dict):
        with pytest.raises(MalformedPayload):
            _explain(document, strict)


event_types = st.one_of(st.none(), st.sampled_from(EventType), st.text())
media_types = st.one_of(st.none(), st.sampled_from(MediaType), st.text())
subtypes = st.one_of(st.none(), st.sampled_from(InteractionSubtype), st.text())
entities = st.builds(
    Entity,
    id=st.none() | st.text(),
    media_type=media_types,
    interaction_subtype=subtypes,
    self_uri=st.none() | st.text(),
)
payloads = st.builds(
    EventsPayload,
    operation_id=st.none() | st.text(),
    events=st.lists(st.builds(Event, event_type=event_types, entity=st.none() | entities)).map(
        tuple
    ),
)


@given(payloads)
def test_json_round_trip_of_payloads(payload: EventsPayload) -> None:
    wire = payload.to_json()
    assert parse_events(wire) == payload
    document = json.loads(wire)
    for item in document["data"]["entities"]:
        assert set(item) <= {"event", "entity"}
        assert set(item.get("entity", {})) <= {"id", "mediaType", "interactionSubtype", "selfUri"}


def test_wire_names_stay_camel_case(seed_body: bytes) -> None:
    assert json.loads(parse_events(seed_body).to_json()) == json.loads(seed_body)


def test_a_too_long_integer_is_refused_in_the_senders_terms() -> None:
    """The interpreter's own message advises a Python call; the sender gets the limit."""
    with pytest.raises(MalformedPayload) as raised:
        parse_events(b'{"n": ' + b"9" * 5000 + b', "data": {"entities": []}}')
    assert raised.value.message == (
        f"the body's JSON has an unsupported number: an integer has more than "
        f"{sys.get_int_max_str_digits()} digits"
    )
