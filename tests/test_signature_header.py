"""The header parser: lenient only where senders differ, a clean error for everything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import (
    DigestEncoding,
    MalformedSignature,
    MissingSignature,
    UnsupportedAlgorithm,
    WebhookError,
    parse_signature_header,
)
from hubsig.signature_header import format_signature

DIGEST = bytes(range(20))


@pytest.mark.parametrize(
    "header",
    [
        "sha1=" + DIGEST.hex(),
        "SHA1=" + DIGEST.hex(),
        "Sha1=" + DIGEST.hex().upper(),
        "  sha1=" + DIGEST.hex() + "\t",
        ("sha1=" + DIGEST.hex()).encode(),
    ],
)
def test_accepted_spellings(header: str | bytes) -> None:
    assert parse_signature_header(header) == ("sha1", DIGEST)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, MissingSignature),
        ("", MissingSignature),
        ("   ", MissingSignature),
        (DIGEST.hex(), MalformedSignature),
        ("sha1 =" + DIGEST.hex(), UnsupportedAlgorithm),
        ("sha1= " + DIGEST.hex(), MalformedSignature),
        ("sha1=" + DIGEST.hex()[:-1], MalformedSignature),
        ("sha1=" + DIGEST.hex() + "00", MalformedSignature),
        ("sha1=" + DIGEST.hex()[:20] + " " + DIGEST.hex()[21:], MalformedSignature),
        ("sha1=0x" + DIGEST.hex()[2:], MalformedSignature),
        ("sha256=" + DIGEST.hex(), MalformedSignature),
        ("md5=" + DIGEST.hex(), UnsupportedAlgorithm),
        ("sha1=" + DIGEST.hex() + ",sha256=" + bytes(32).hex(), MalformedSignature),
    ],
)
def test_refused_headers(header: str | None, error: type[WebhookError]) -> None:
    with pytest.raises(error):
        parse_signature_header(header)


def test_hostile_algorithm_names_are_not_echoed() -> None:
    with pytest.raises(UnsupportedAlgorithm) as raised:
        parse_signature_header("<script>\r\nX-Injected: 1=" + DIGEST.hex())
    assert "<script>" not in raised.value.message
    assert "\n" not in raised.value.message


@given(st.one_of(st.text(), st.binary()), st.sampled_from(["hex", "base64"]))
def test_arbitrary_input_raises_only_hubsig_errors(header: str | bytes, encoding: str) -> None:
    try:
        algorithm, digest = parse_signature_header(header, encoding)  # type: ignore[arg-type]
    except WebhookError as error:
        status = error.status
    else:
        status = 200
        assert len(digest) == {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}[algorithm]
    assert status in (200, 401)


@given(st.sampled_from(["sha1", "sha256", "sha384", "sha512"]), st.data())
def test_format_then_parse_round_trips(algorithm: str, data: st.DataObject) -> None:
    size = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}[algorithm]
    digest = data.draw(st.binary(min_size=size, max_size=size))
    encodings: tuple[DigestEncoding, ...] = ("hex", "base64")
    for encoding in encodings:
        header = format_signature(algorithm, digest, encoding)
        assert parse_signature_header(header, encoding) == (algorithm, digest)


def test_base64_refuses_non_alphabet_and_wrong_size() -> None:
    with pytest.raises(MalformedSignature):
        parse_signature_header("sha1=" + "*" * 28, "base64")
    with pytest.raises(MalformedSignature):
        parse_signature_header("sha1=AAAA", "base64")
