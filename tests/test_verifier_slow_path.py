"""The full parser path of ``Verifier.verify``: every header the fast path does not take.

Bytes headers, headers with surrounding whitespace, mixed-case algorithm names and
base64 digests all reach the full parser; each must refuse a tampered body, a wrong
key and a changed digest exactly as a well-formed header does.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import hubsig
from hubsig import (
    DigestEncoding,
    MalformedSignature,
    SignatureMismatch,
    UnsupportedAlgorithm,
    Verification,
    Verifier,
    WebhookError,
)
from tests.known_answers import load_vectors, vector_body, vector_secret

Header = str | bytes
Spelling = Callable[[str], Header]
ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def _mixed_case(header: str) -> str:
    name, _, digest = header.partition("=")
    return f"{name[0].upper()}{name[1:]}={digest}"


SPELLINGS: dict[str, Spelling] = {
    "bytes": lambda header: header.encode("ascii"),
    "padded": lambda header: f"  {header}\t",
    "mixed-case-name": _mixed_case,
    "padded-upper": lambda header: f" {header.upper()}",
    "bytes-padded-mixed": lambda header: f"\t{_mixed_case(header).upper()} ".encode("ascii"),
}
VECTORS = [
    case
    for case in load_vectors("signatures.json") + load_vectors("hmac_long_keys.json")
    if case["valid"] and case["header"] == case["header"].strip().lower()
]


def _ids(case: dict[str, Any]) -> str:
    return str(case["name"])


def _flip_bit(header: str, bit: int, encoding: DigestEncoding = "hex") -> str:
    name, _, text = header.partition("=")
    digest = bytearray(bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text))
    digest[bit // 8 % len(digest)] ^= 1 << (bit % 8)
    encoded = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return f"{name}={encoded}"


def _outcome(check: Callable[[], Verification]) -> Verification | type[WebhookError]:
    try:
        return check()
    except WebhookError as error:
        return type(error)


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("case", VECTORS, ids=_ids)
def test_known_answers_in_every_spelling(case: dict[str, Any], spelling: str) -> None:
    body, secret, header = vector_body(case), vector_secret(case), case["header"]
    spell = SPELLINGS[spelling]
    verifier = Verifier(["not-the-secret", secret])
    assert verifier.verify(body, spell(header)) == Verification(case["algorithm"], 1)
    with pytest.raises(SignatureMismatch):
        verifier.verify(body + b" ", spell(header))
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, spell(_flip_bit(header, 0)))
    with pytest.raises(SignatureMismatch):
        Verifier("not-the-secret").verify(body, spell(header))


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@given(
    body=st.binary(max_size=300),
    secret=st.binary(min_size=1, max_size=200).filter(lambda b: b == b.strip()),
    algorithm=st.sampled_from(ALGORITHMS),
    data=st.data(),
)
def test_any_tampering_is_refused_in_every_spelling(
    spelling: str, body: bytes, secret: bytes, algorithm: str, data: st.DataObject
) -> None:
    spell = SPELLINGS[spelling]
    header = hubsig.sign(body, secret, algorithm)
    verifier = Verifier(secret)
    assert verifier.verify(body, spell(header)).algorithm == algorithm
    tampered = data.draw(st.binary(max_size=300).filter(lambda other: other != body))
    with pytest.raises(SignatureMismatch):
        verifier.verify(tampered, spell(header))
    bit = data.draw(st.integers(0, 8 * 64 - 1))
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, spell(_flip_bit(header, bit)))


@given(
    body=st.binary(max_size=300),
    secret=st.binary(min_size=1, max_size=200).filter(lambda b: b == b.strip()),
    algorithm=st.sampled_from(ALGORITHMS),
    data=st.data(),
)
def test_base64_digests_refuse_tampering_and_wrong_keys(
    body: bytes, secret: bytes, algorithm: str, data: st.DataObject
) -> None:
    header = hubsig.sign(body, secret, algorithm, encoding="base64")
    verifier = Verifier([b"other", secret], encoding="base64")
    assert verifier.verify(body, header) == Verification(algorithm, 1)
    assert verifier.verify(body, f" {header} ".encode()) == Verification(algorithm, 1)
    tampered = data.draw(st.binary(max_size=300).filter(lambda other: other != body))
    with pytest.raises(SignatureMismatch):
        verifier.verify(tampered, header)
    bit = data.draw(st.integers(0, 8 * 64 - 1))
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, _flip_bit(header, bit, "base64"))
    with pytest.raises(SignatureMismatch):
        Verifier(b"other", encoding="base64").verify(body, header)


def test_base64_through_the_one_call_form_and_streaming() -> None:
    body, secret = b'{"operationId":"b64"}', "s3cret"
    header = hubsig.sign(body, secret, "sha256", encoding="base64")
    assert hubsig.verify(body, header, secret, encoding="base64").algorithm == "sha256"
    with pytest.raises(MalformedSignature):
        hubsig.verify(body, header, secret)  # read as hex, a base64 digest is malformed
    check = Verifier(secret, encoding="base64").begin(header.encode())
    check.update(body[:5])
    check.update(body[5:])
    assert check.verify() == Verification("sha256", 0)
    tampered = Verifier(secret, encoding="base64").begin(header)
    tampered.update(body + b"\n")
    with pytest.raises(SignatureMismatch):
        tampered.verify()


def test_the_one_call_form_keeps_the_allow_list() -> None:
    body, secret = b"{}", "s3cret"
    with pytest.raises(hubsig.DisallowedAlgorithm):
        hubsig.verify(body, hubsig.sign(body, secret, "sha1"), secret, algorithms=["sha256"])
    with pytest.raises(hubsig.DisallowedAlgorithm):
        hubsig.verify(body, b" " + hubsig.sign(body, secret).encode(), secret, algorithms="sha512")


_EDITS = "0123456789abcdefABCDEF=shaSHA \t\x00\xe9+/"


@given(
    body=st.binary(max_size=64),
    algorithm=st.sampled_from(ALGORITHMS),
    edits=st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from(["insert", "delete", "replace"])),
        max_size=3,
    ),
    characters=st.lists(st.sampled_from(_EDITS), min_size=3, max_size=3),
)
@example(body=b"", algorithm="sha1", edits=[], characters=["a", "a", "a"])
@example(body=b"x", algorithm="sha1", edits=[(0, "replace")], characters=["S", "a", "a"])
@example(body=b"x", algorithm="sha256", edits=[(70, "insert")], characters=["=", "a", "a"])
def test_the_fast_path_and_the_full_parser_always_agree(
    body: bytes, algorithm: str, edits: list[tuple[int, str]], characters: list[str]
) -> None:
    """A text header (fast path when well formed) and its bytes (always the full parser)
    get the same answer, as do the streaming form and a verifier of several keys."""
    header = hubsig.sign(body, "secret", algorithm)
    for (position, edit), character in zip(edits, characters, strict=False):
        at = position % (len(header) + 1)
        if edit == "insert":
            header = header[:at] + character + header[at:]
        elif edit == "delete":
            header = header[:at] + header[at + 1 :]
        else:
            header = header[:at] + character + header[at + 1 :]
    verifier = Verifier(["other", "secret"])
    as_text = _outcome(lambda: verifier.verify(body, header))
    assert _outcome(lambda: verifier.verify(body, header.encode("latin-1"))) == as_text

    def streamed() -> Verification:
        check = verifier.begin(header)
        check.update(body)
        return check.verify()

    assert _outcome(streamed) == as_text
    if isinstance(as_text, Verification):
        assert as_text == Verification(algorithm, 1)
    else:
        assert as_text in (SignatureMismatch, MalformedSignature, UnsupportedAlgorithm) or (
            issubclass(as_text, hubsig.MissingSignature)
        )
