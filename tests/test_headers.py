"""Headers: one case-insensitive view over dicts, pairs and ASGI byte pairs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hubsig import Headers


def test_names_are_case_insensitive_and_repeats_are_kept() -> None:
    headers = Headers([(b"X-Hub-Signature", b"a"), ("x-hub-signature", "b"), ("Other", "c")])
    assert headers["X-HUB-SIGNATURE"] == "a"
    assert headers.get_all("x-hub-signature") == ["a", "b"]
    assert "other" in headers
    assert headers.get("missing") is None
    assert len(headers) == 2


def test_latin1_bytes_decode_without_error() -> None:
    assert Headers({b"x": b"\xe9\xff"})["x"] == "\xe9\xff"


@given(st.lists(st.tuples(st.binary(), st.binary())))
def test_any_byte_pairs_are_readable(pairs: list[tuple[bytes, bytes]]) -> None:
    headers = Headers(pairs)
    for name, value in pairs:
        assert value.decode("latin-1") in headers.get_all(name.decode("latin-1"))
