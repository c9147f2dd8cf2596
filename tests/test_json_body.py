"""The body decoded as one strict JSON object: every failure one ``MalformedPayload`` that says
what is wrong in the sender's terms (through ``parse_events``, whose strict mode always takes
this path)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hubsig
from hubsig import MalformedPayload

EMPTY = b'{"operationId":"op","data":{"entities":[]}}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"operationId":"\xff"}', "the body is not UTF-8 (bad byte at offset 16)"),
        (b'{"operationId":', "the body is not valid JSON: Expecting value at line 1 column 16"),
        (b"[]", "the body must be a JSON object, not an array"),
        (b'"op"', "the body must be a JSON object, not a string"),
        (b"null", "the body must be a JSON object, not null"),
        (b'{"n":NaN}', "the body's JSON has an unsupported number: NaN is not allowed"),
        (b'{"n":-Infinity}', "unsupported number: -Infinity is not allowed"),
        (b'{"n":' + b"9" * 5000 + b"}", "unsupported number: an integer has more than"),
        (b'{"s":"\\ud800"}', "the body's JSON escapes a lone surrogate"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "the body's JSON is nested too deeply"),
    ],
    ids=[
        "not-utf8",
        "truncated",
        "array",
        "string",
        "null",
        "nan",
        "infinity",
        "huge-integer",
        "lone-surrogate",
        "too-deep",
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_each_undecodable_body_is_one_malformed_payload(
    body: bytes, message: str, strict: bool
) -> None:
    with pytest.raises(MalformedPayload) as refused:
        hubsig.parse_events(body, strict=strict)
    assert message in str(refused.value)


def test_a_repeated_key_keeps_its_last_value_unless_strict() -> None:
    body = b'{"operationId":"first","operationId":"op","data":{"entities":[]}}'
    assert hubsig.parse_events(body).operation_id == "op"
    with pytest.raises(MalformedPayload, match="repeats the key 'operationId' in one object"):
        hubsig.parse_events(body, strict=True)


def test_a_surrogate_pair_is_text_and_bytes_like_bodies_are_taken() -> None:
    body = b'{"operationId":"\\ud83d\\ude00","data":{"entities":[]}}'
    assert hubsig.parse_events(body, strict=True).operation_id == "\U0001f600"
    assert hubsig.parse_events(bytearray(EMPTY), strict=True).operation_id == "op"
    assert hubsig.parse_events(memoryview(EMPTY), strict=True).operation_id == "op"


@given(st.binary(max_size=64))
def test_any_bytes_are_a_payload_or_a_malformed_payload(body: bytes) -> None:
    with contextlib.suppress(MalformedPayload):
        hubsig.parse_events(body, strict=True)
