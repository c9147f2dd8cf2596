"""Headers: one case-insensitive view over dicts, pairs and ASGI byte pairs."""

from __future__ import annotations

from typing import Any

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


names = st.sampled_from(["x-hub-signature", "X-Hub-Signature", "content-length", "B3", "b3", "a"])


@given(st.lists(st.tuples(names, st.text(max_size=4)), max_size=8), st.booleans())
def test_every_value_is_kept_in_order_under_its_name(
    pairs: list[tuple[str, str]], as_bytes: bool
) -> None:
    source: list[tuple[str, str]] | list[tuple[bytes, bytes]] = pairs
    if as_bytes:
        source = [
            (n.encode(), v.encode("utf-8").decode("latin-1").encode("latin-1")) for n, v in pairs
        ]
    headers = Headers(source)
    wanted = [(n.lower(), v if not as_bytes else v.encode().decode("latin-1")) for n, v in pairs]
    distinct = list(dict.fromkeys(name for name, _ in wanted))
    assert list(headers) == distinct
    assert len(headers) == len(distinct)
    for name in distinct:
        values = [value for key, value in wanted if key == name]
        assert headers.get_all(name.upper()) == values
        assert headers[name] == values[0]
    assert headers.get_all("never-sent") == []
    assert Headers(headers).get_all("b3") == headers.get_all("b3")


def test_repr_names_the_headers_but_never_shows_a_value() -> None:
    headers = Headers([("X-Api-Key", "k-123"), ("x-api-key", "k-456"), ("B3", "0")])
    assert repr(headers) == "Headers(['b3', 'x-api-key'])"


texts = st.one_of(st.sampled_from(["A", "a", "x-b3-traceid", "Length"]), st.text(max_size=3))
either = st.one_of(
    texts,
    texts.map(lambda text: text.encode("utf-8")),
    texts.map(lambda text: bytearray(text.encode("utf-8"))),
)


@given(st.lists(st.tuples(either, either), max_size=6))
def test_a_list_of_pairs_reads_as_the_same_pairs_one_at_a_time(
    pairs: list[tuple[str | bytes | bytearray, str | bytes | bytearray]],
) -> None:
    """A server's list (ASGI's bytes, a WSGI server's text, or a mix) is read in one pass
    when it can be; the answer is the one reading pair by pair gives, repeats included."""
    loose: Any = pairs  # bytearray is read as bytes are, though the types name bytes only
    fast, one_by_one = Headers(loose), Headers(iter(loose))
    assert list(fast) == list(one_by_one)
    for name in one_by_one:
        assert fast.get_all(name) == one_by_one.get_all(name)
