"""``hubsig.sinks``: what a message carries, which events become messages, and URLs."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig._dedupe import event_keys
from hubsig._delivery import Delivery
from hubsig._trace import TraceContext
from hubsig._verifier import Verification
from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage, messages_of, sink_from_url
from hubsig.testing import make_event, make_events

TRACE = TraceContext("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312")


def _delivery(body: bytes, fresh: tuple[int, ...] | None = None) -> Delivery:
    """A delivery of ``body`` whose fresh events are those at ``fresh`` (all by default)."""
    from hubsig._payload import parse_events

    arrived = parse_events(body)
    if fresh is None:
        return Delivery(arrived, TRACE, Verification("sha1", 0), body)
    payload = arrived._replace(events=tuple(arrived.events[i] for i in fresh))
    return Delivery(payload, TRACE, Verification("sha1", 0), body, arrived=arrived)


def test_each_fresh_event_is_one_message_keyed_as_the_store_keys_it() -> None:
    body = make_events(3, operation_id="op-1").to_json()
    delivery = _delivery(body, fresh=(0, 2))
    messages = messages_of(delivery)
    keys = event_keys(delivery.arrived or delivery.payload, body)
    entities = json.loads(body)["data"]["entities"]
    assert [m.key for m in messages] == [keys[0], keys[2]]
    assert [m.event for m in messages] == [entities[0], entities[2]]
    assert {(m.operation_id, m.trace_id) for m in messages} == {("op-1", TRACE.trace_id)}


def test_the_event_is_the_signed_object_not_the_model_written_again() -> None:
    body = b'{"operationId":"o","data":{"entities":[{"event":"STARTED","x-new":[1,2],' \
        b'"entity":{"id":"e1","mediaType":"chat","future":{"a":1}}}]}}'  # fmt: skip
    (message,) = messages_of(_delivery(body))
    assert message.event == json.loads(body)["data"]["entities"][0]
    assert message.key == "STARTED:e1"


def test_an_event_repeated_in_one_delivery_is_one_message() -> None:
    event = make_event(id="same")
    body = make_events(events=[event, make_event(id="other"), event]).to_json()
    assert [m.key for m in messages_of(_delivery(body))] == ["STARTED:same", "STARTED:other"]


@pytest.mark.parametrize("body", [b"{}", b'{"data":{}}', b'{"data":{"entities":[]}}'])
def test_a_delivery_without_events_is_no_message(body: bytes) -> None:
    assert messages_of(_delivery(body)) == []


@given(
    st.text(min_size=1),
    st.dictionaries(st.text(), st.integers() | st.text() | st.none()),
    st.none() | st.text(),
)
def test_a_message_reads_back_from_its_fields_and_its_json(
    key: str, event: dict[str, object], operation: str | None
) -> None:
    message = SinkMessage(key, event, operation or None, TRACE.trace_id)
    assert SinkMessage.from_json(message.to_json()) == message
    as_bytes = {k.encode(): v.encode("utf-8", "surrogatepass") for k, v in message.fields().items()}
    if all(ord(c) < 0xD800 or ord(c) > 0xDFFF for c in key + json.dumps(event)):
        assert SinkMessage.from_fields(as_bytes) == message


@pytest.mark.parametrize(
    "document",
    [
        "[]",
        "{}",
        '{"key": "", "event": {}, "trace_id": "t"}',
        '{"key": "k", "event": [], "trace_id": "t"}',
        '{"key": "k", "event": {}, "trace_id": 5}',
        '{"key": "k", "event": {}, "trace_id": "t", "operation_id": 1}',
    ],
)
def test_something_that_is_no_message_is_a_value_error(document: str) -> None:
    with pytest.raises(ValueError, match="not a hubsig message"):
        SinkMessage.from_json(document)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:1/", "starts with redis://"),
        ("redis://127.0.0.1:1/0", "no stream"),
        ("nats://127.0.0.1:1", "no stream"),
        ("celery+redis://127.0.0.1:1/0", "no task"),
        ("nats://127.0.0.1:1?stream=a.b", "not a JetStream stream name"),
    ],
)
def test_a_url_that_names_no_sink_is_a_configuration_error(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        sink_from_url(url)


def test_a_password_in_a_sink_url_shows_in_no_repr() -> None:
    for url in (
        "redis://:hunter2@127.0.0.1:1/0?stream=s",
        "nats://user:hunter2@127.0.0.1:1?stream=S",
        "celery+redis://:hunter2@127.0.0.1:1/0?task=t",
    ):
        sink = sink_from_url(url)
        seen = repr(sink) + repr(vars(sink) if hasattr(sink, "__dict__") else "")
        assert "hunter2" not in seen, seen
