"""EventsResponse: the seed's response shape, both ways."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import EventsResponse, MalformedPayload, events_response, parse_events_response


def test_success_body_has_the_seed_shape() -> None:
    body = events_response(["a", "b"]).to_json()
    assert json.loads(body) == {
        "status": {"code": 0, "message": "OK"},
        "data": {"ids": [{"id": "a"}, {"id": "b"}]},
    }


def test_error_body_has_the_same_shape_with_a_non_zero_code() -> None:
    body = events_response(code=401, message="signature_mismatch").to_json()
    assert json.loads(body) == {
        "status": {"code": 401, "message": "signature_mismatch"},
        "data": {"ids": []},
    }


@given(
    st.builds(
        EventsResponse,
        code=st.integers(),
        message=st.text(),
        ids=st.lists(st.text()).map(tuple),
    )
)
def test_json_round_trip(response: EventsResponse) -> None:
    assert parse_events_response(response.to_json()) == response


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"status": {"code": "0"}}', b'{"status": {"code": 0}, "data": {"ids": [1]}}'],
)
def test_parse_refuses_other_shapes(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_events_response(body)


@given(st.binary())
def test_parse_raises_only_malformed_payload(body: bytes) -> None:
    with contextlib.suppress(MalformedPayload):
        parse_events_response(body)
