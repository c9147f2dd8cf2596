"""``parse_events``'s msgspec fast path gives exactly what the standard path gives.

A differential property test: for valid, invalid and hostile bodies, the
public ``parse_events`` (fast path first) and the standard parser alone give
equal payloads, or the same ``MalformedPayload`` message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubsig import parse_events
from hubsig._json_body import parse_json_object
from hubsig._payload import _build, _explain
from hubsig.errors import MalformedPayload

fast_payload = pytest.importorskip("hubsig._fast_payload", reason="hubsig[fast] (msgspec)")


def standard(body: bytes) -> Any:
    """The standard path alone: a payload, or the refusal's message."""
    try:
        document = parse_json_object(body)
        payload = _build(document, False)
        return payload if payload is not None else _explain(document, False)
    except MalformedPayload as error:
        return ("refused", str(error))


def public(body: bytes) -> Any:
    try:
        return parse_events(body)
    except MalformedPayload as error:
        return ("refused", str(error))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["STARTED", "FINISHED", "chat", "email", "InboundNew", "Outbound"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
entity = st.dictionaries(
    st.sampled_from(["id", "mediaType", "interactionSubtype", "selfUri", "extra"]),
    values,
    max_size=5,
)
item = st.fixed_dictionaries({}, optional={"event": values, "entity": st.one_of(entity, values)})
document = st.fixed_dictionaries(
    {},
    optional={
        "operationId": values,
        "data": st.one_of(
            st.fixed_dictionaries(
                {}, optional={"entities": st.one_of(st.lists(item, max_size=5), values)}
            ),
            values,
        ),
        "other": values,
    },
)


@settings(max_examples=400)
@given(document)
def test_both_paths_agree_on_generated_documents(doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    assert public(body) == standard(body)


HOSTILE = [
    b'{"operationId":"op","data":{"entities":[{"event":"STARTED","entity":{"id":"\\ud800"}}]}}',
    b'{"operationId":"op","operationId":7}',
    b'{"operationId":7,"operationId":"op"}',
    b'{"data":{"entities":[{"entity":{"id":"a","id":"b"}}]}}',
    b'{"data":{"entities":[{"event":"STARTED"}],"entities":5}}',
    b'{"x": ' + b"1" * 5000 + b"}",
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b"[]",
    b'"text"',
    b"",
    b"\xff\xfe",
    b'{"operationId":"op"} trailing',
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"operationId":"\\u00e9","data":null}',
    b'{"operationId":"op","data":{"entities":[null]}}',
    b'{"operationId":"op","data":{"entities":[{"event":null,"entity":null}]}}',
    b'{"operationId":"op","data":{"entities":[{"event":"NEW","entity":{"mediaType":"fax"}}]}}',
    b'{"operationId":"op","data":{"entities":[{"entity":{"id":1}}]}}',
    b'{"operationId":"op","data":{"entities":[{"entity":{"selfUri":[]}}]}}',
    b'{"operationId":"\\ud83d\\ude00"}',
    b'{"operationId":"op"}\n',
    b' {"operationId":"op"} ',
    b'{"operationId": "\xc3\x28"}',
    b'{"operationId":"op","data":{"entities":[{"entity":{"id":"\xff"}}]}}',
    b'{"other": "\xed\xa0\x80"}',
]


@pytest.mark.parametrize("body", HOSTILE, ids=[repr(b[:40]) for b in HOSTILE])
def test_both_paths_agree_on_hostile_bodies(body: bytes) -> None:
    assert public(body) == standard(body)


@given(st.binary(max_size=200))
def test_both_paths_agree_on_arbitrary_bytes(body: bytes) -> None:
    assert public(body) == standard(body)


@settings(max_examples=300)
@given(document, st.data())
def test_both_paths_agree_when_a_valid_body_is_damaged(doc: dict[str, Any], data: Any) -> None:
    """Bytes cut, inserted or flipped anywhere in a real body: bad UTF-8 inside strings,
    broken syntax, stray controls."""
    body = bytearray(json.dumps(doc, ensure_ascii=False).encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body)))
        body[at:at] = data.draw(st.binary(min_size=1, max_size=3))
    assert public(bytes(body)) == standard(bytes(body))


def test_the_fast_path_is_taken_for_an_ordinary_delivery() -> None:
    from hubsig.testing import make_events

    body = make_events(5).to_json()
    fast = fast_payload.fast_parse(body)
    assert fast is not None
    assert fast == standard(body)


@settings(max_examples=500)
@given(
    limit=st.integers(min_value=0, max_value=300),
    before=st.binary(max_size=700),
    run=st.integers(min_value=0, max_value=700),
    digit=st.sampled_from(b"0123456789"),
    after=st.binary(max_size=700),
)
def test_long_digit_runs_are_never_missed(
    limit: int, before: bytes, run: int, digit: int, after: bytes
) -> None:
    """The sampled check may say "maybe" wrongly, never "no" wrongly: a body with more than
    ``limit`` digits in a row always goes to the standard parser, which refuses it."""
    body = before + bytes([digit]) * run + after
    digits_only = bytes(byte if byte in b"0123456789" else 32 for byte in body)
    exact = limit > 0 and any(len(run_) > limit for run_ in digits_only.split())
    if exact:
        assert fast_payload.maybe_long_digit_run(body, limit)


def test_a_long_integer_anywhere_takes_the_standard_path() -> None:
    body = b'{"ignored": ' + b"7" * 5000 + b', "data": {"entities": []}}'
    assert public(body) == standard(body)
    assert public(body)[0] == "refused"
