"""EventsResponse: the seed's response shape, both ways."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given
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


@given(
    code=st.integers(),
    message=st.text(st.characters(exclude_categories=())),
    ids=st.lists(st.text(st.characters(exclude_categories=()))),
)
@example(code=0, message="OK", ids=["\ud800", 'a"\\\n\x00é'])
def test_to_json_writes_what_json_dumps_writes(code: int, message: str, ids: list[str]) -> None:
    """Byte for byte, escapes, non-ASCII and lone surrogates (refused alike) included."""
    response = EventsResponse(ids=tuple(ids), code=code, message=message)
    expected: bytes | type[Exception]
    try:
        expected = json.dumps(
            response.to_dict(), separators=(",", ":"), ensure_ascii=False
        ).encode()
    except UnicodeEncodeError:
        expected = UnicodeEncodeError
    if expected is UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            response.to_json()
    else:
        assert response.to_json() == expected


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


def test_ids_that_are_no_strings_are_written_as_json_would() -> None:
    """A handler's mistake (ids as numbers) must not turn into a TypeError and a 500 loop."""
    response = EventsResponse(ids=(1, None), message=None)  # type: ignore[arg-type]
    assert (
        response.to_json()
        == b'{"status":{"code":0,"message":null},"data":{"ids":[{"id":1},{"id":null}]}}'
    )
