"""The payload's typed models (``Entity``, ``Event``, ``EventsPayload``): values, wire form."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hubsig
from hubsig import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType


def test_to_dict_writes_camel_case_wire_names_and_leaves_absent_fields_out() -> None:
    entity = Entity("e1", MediaType.CHAT, InteractionSubtype.INBOUND_NEW, "/interactions/e1")
    assert entity.to_dict() == {
        "id": "e1",
        "mediaType": "chat",
        "interactionSubtype": "InboundNew",
        "selfUri": "/interactions/e1",
    }
    assert Entity().to_dict() == {}
    assert Event().to_dict() == {}
    assert EventsPayload().to_dict() == {"data": {"entities": []}}


def test_a_value_a_newer_sender_adds_is_kept_as_its_string() -> None:
    event = Event("PAUSED", Entity("e1", "video", "Carrier-Pigeon"))
    assert event.to_dict() == {
        "event": "PAUSED",
        "entity": {"id": "e1", "mediaType": "video", "interactionSubtype": "Carrier-Pigeon"},
    }


def test_entity_ids_are_the_ids_present_in_order() -> None:
    payload = EventsPayload(
        "op",
        (
            Event(EventType.STARTED, Entity("b")),
            Event(EventType.FINISHED, None),
            Event(EventType.FINISHED, Entity(None, MediaType.EMAIL)),
            Event(EventType.FINISHED, Entity("a")),
        ),
    )
    assert payload.entity_ids == ("b", "a")


def test_to_json_is_compact_utf8_and_keeps_the_operation_id_first() -> None:
    payload = EventsPayload("op-é", (Event(EventType.STARTED, Entity("ü")),))
    wire = payload.to_json()
    assert (
        wire
        == (
            '{"operationId":"op-é","data":{"entities":[{"event":"STARTED","entity":{"id":"ü"}}]}}'
        ).encode()
    )


def test_the_models_are_immutable_records() -> None:
    payload = EventsPayload("op", ())
    with pytest.raises(AttributeError):
        payload.operation_id = "other"  # type: ignore[misc]
    assert not hasattr(payload, "__dict__")
    assert hash(Entity("a")) == hash(Entity("a"))


_KNOWN = st.sampled_from([*EventType, "PAUSED", None])
_ENTITIES = st.builds(
    Entity,
    st.none() | st.text(max_size=8),
    st.sampled_from([*MediaType, "video", None]),
    st.sampled_from([*InteractionSubtype, "Other", None]),
    st.none() | st.text(max_size=8),
)


@given(
    st.none() | st.text(max_size=8),
    st.lists(st.builds(Event, _KNOWN, st.none() | _ENTITIES), max_size=4),
)
def test_what_to_json_writes_parses_back_to_the_same_payload(
    operation_id: str | None, events: list[Event]
) -> None:
    payload = EventsPayload(operation_id, tuple(events))
    assert json.loads(payload.to_json()) == payload.to_dict()
    assert hubsig.parse_events(payload.to_json()) == payload
