"""The flow's parse (``hubsig._payload.parse``) answers as ``parse_events`` and ``event_keys`` do.

The flow claims a delivery by keys made from the events' kinds and ids, and
answers a repeat with its ids, without building the typed records. Whatever
the body, those keys and ids, the count, the records when read, and the
refusal are exactly the ones the records give (and so the ones every store
already holds), and an acknowledgement written without escaping ids it knows
need none is the one written with every check.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsig import parse_events
from hubsig._dedupe import event_keys
from hubsig._payload import parse
from hubsig._response import events_json
from hubsig.errors import MalformedPayload


def by_records(body: bytes, strict: bool = False) -> Any:
    try:
        payload = parse_events(body, strict=strict)
    except MalformedPayload as error:
        return ("refused", str(error))
    acknowledgement = events_json(payload.entity_ids)  # the checked way, held to json.dumps
    return event_keys(payload, body), acknowledgement, len(payload.events), payload


def by_flow(body: bytes, strict: bool = False) -> Any:
    try:
        parsed = parse(body, strict=strict)
    except MalformedPayload as error:
        return ("refused", str(error))
    acknowledgement = events_json(parsed.entity_ids, plain_ids=parsed.plain_ids)
    keys, count = parsed.keys(body), parsed.count
    return keys, acknowledgement, count, parsed.payload  # the records last: read after the keys


ids = st.one_of(
    st.text(max_size=10),
    st.text(alphabet='\x00é\u2028"\\:', max_size=4),
    st.sampled_from(["sha256:" + "0" * 64, "x" * 300, "é" * 200, ""]),
    st.integers(),
)
kinds = st.one_of(
    st.sampled_from(["STARTED", "FINISHED"]),  # mostly known: the path without records
    st.sampled_from(["STARTED", "FINISHED", "PAUSED", ""]),
    st.none(),
    st.integers(),
)
entities = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(ids, st.none()),
        "mediaType": st.sampled_from(["chat", "email", "fax", None]),
        "interactionSubtype": st.sampled_from(["InboundNew", "SMS", "Carrier pigeon", None]),
        "selfUri": st.sampled_from(["https://x/1", None]),
    },
)
known_entities = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "mediaType": st.sampled_from(["chat", "email"]),
        "interactionSubtype": st.sampled_from(["InboundNew", "SMS"]),
    },
)
known_events = st.fixed_dictionaries(
    {"event": st.sampled_from(["STARTED", "FINISHED"]), "entity": known_entities}
)
events = st.one_of(
    known_events,  # the path without records, most often
    known_events,
    st.fixed_dictionaries({}, optional={"event": kinds, "entity": st.one_of(entities, st.none())}),
)
deliveries = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({"entities": st.lists(events, max_size=6)})},
    optional={"operationId": st.one_of(st.text(max_size=6), st.none())},
)


@settings(max_examples=600)
@given(deliveries, st.booleans(), st.booleans())
def test_keys_ids_and_records_are_the_records_own(
    document: dict[str, Any], ascii_only: bool, strict: bool
) -> None:
    body = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert by_flow(body, strict) == by_records(body, strict)


@given(st.binary(max_size=120))
def test_any_bytes_are_refused_or_read_alike(body: bytes) -> None:
    assert by_flow(body) == by_records(body)


def test_an_ordinary_delivery_is_claimed_without_building_its_records() -> None:
    """The saving the flow is built for: the keys and ids come first, the records on read."""
    pytest.importorskip("msgspec", reason="hubsig[fast] reads kinds and ids without records")
    from hubsig.testing import make_events

    payload = make_events(4)
    body = payload.to_json()
    parsed = parse(body)
    assert parsed._payload is None
    assert parsed.keys(body) == event_keys(payload, body)
    assert parsed.entity_ids == payload.entity_ids
    assert parsed._payload is None
    assert parsed.payload == payload
    assert parsed.payload is parsed.payload  # built once
