"""Verifier, sign and verify: known answers, round trips, tampering, rotation, streaming."""

from __future__ import annotations

import base64
import hmac
import itertools
import warnings
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hubsig
from hubsig import (
    ConfigurationError,
    DisallowedAlgorithm,
    MalformedSignature,
    MissingSignature,
    SecretWhitespaceWarning,
    SignatureMismatch,
    UnsupportedAlgorithm,
    Verifier,
    WebhookError,
)
from tests.known_answers import SEED_SECRET, load_vectors, vector_body, vector_secret

SIGNATURE_CASES = load_vectors("signatures.json")
WHY_TO_ERROR: dict[str, type[WebhookError] | tuple[type[WebhookError], ...]] = {
    "mismatch": SignatureMismatch,
    "malformed": MalformedSignature,
    "unsupported": UnsupportedAlgorithm,
    "missing-or-malformed": (MissingSignature, MalformedSignature),
}

secrets_st = st.one_of(
    st.text(min_size=1).filter(lambda s: s == s.strip()),
    st.binary(min_size=1).filter(lambda b: b == b.strip()),
)
algorithms_st = st.sampled_from(hubsig.ALGORITHMS)


def _ids(case: dict[str, Any]) -> str:
    return str(case["name"])


@pytest.mark.parametrize("case", [c for c in SIGNATURE_CASES if c["valid"]], ids=_ids)
def test_known_answer_accepted(case: dict[str, Any]) -> None:
    body, secret = vector_body(case), vector_secret(case)
    result = Verifier(secret).verify(body, case["header"])
    assert result.algorithm == case["algorithm"]
    assert result.key_index == 0


@pytest.mark.parametrize(
    "case", [c for c in SIGNATURE_CASES if c["valid"] and c["header"].islower()], ids=_ids
)
def test_sign_reproduces_openssl_digest(case: dict[str, Any]) -> None:
    body, secret = vector_body(case), vector_secret(case)
    assert hubsig.sign(body, secret, case["algorithm"]) == case["header"].strip()


@pytest.mark.parametrize("case", [c for c in SIGNATURE_CASES if not c["valid"]], ids=_ids)
def test_known_answer_refused(case: dict[str, Any]) -> None:
    with pytest.raises(WHY_TO_ERROR[case["why"]]) as raised:
        Verifier(vector_secret(case)).verify(vector_body(case), case["header"])
    assert raised.value.status == 401


@given(body=st.binary(), secret=secrets_st, algorithm=algorithms_st)
def test_sign_then_verify_round_trips(body: bytes, secret: str | bytes, algorithm: str) -> None:
    header = hubsig.sign(body, secret, algorithm)
    assert hubsig.verify(body, header, secret).algorithm == algorithm
    key = secret.encode() if isinstance(secret, str) else secret
    assert header == f"{algorithm}={hmac.new(key, body, algorithm).hexdigest()}"


@given(body=st.binary(), secret=secrets_st, algorithm=algorithms_st, data=st.data())
def test_any_tampered_body_is_refused(
    body: bytes, secret: str | bytes, algorithm: str, data: st.DataObject
) -> None:
    header = hubsig.sign(body, secret, algorithm)
    tampered = data.draw(st.binary().filter(lambda other: other != body))
    with pytest.raises(SignatureMismatch):
        hubsig.verify(tampered, header, secret)


@given(body=st.binary(), secret=secrets_st, other=secrets_st, algorithm=algorithms_st)
def test_another_secret_is_refused(
    body: bytes, secret: str | bytes, other: str | bytes, algorithm: str
) -> None:
    as_bytes = [s.encode() if isinstance(s, str) else s for s in (secret, other)]
    if as_bytes[0] == as_bytes[1]:
        return
    with pytest.raises(SignatureMismatch):
        hubsig.verify(body, hubsig.sign(body, secret, algorithm), other)


@given(body=st.binary(), secret=secrets_st, algorithm=algorithms_st, data=st.data())
def test_any_flipped_digest_bit_is_refused(
    body: bytes, secret: str | bytes, algorithm: str, data: st.DataObject
) -> None:
    name, _, digest_hex = hubsig.sign(body, secret, algorithm).partition("=")
    digest = bytearray(bytes.fromhex(digest_hex))
    bit = data.draw(st.integers(0, len(digest) * 8 - 1))
    digest[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureMismatch):
        hubsig.verify(body, f"{name}={digest.hex()}", secret)


@given(header=st.one_of(st.text(), st.binary(), st.none()))
def test_arbitrary_headers_raise_only_webhook_errors(header: str | bytes | None) -> None:
    with pytest.raises(WebhookError) as raised:
        Verifier("secret").verify(b"body", header)
    assert raised.value.status == 401


def test_non_ascii_signature_header_is_a_401_not_a_type_error() -> None:
    with pytest.raises(MalformedSignature):
        Verifier("secret").verify(b"body", "sha1=" + "é" * 40)


def test_rotation_reports_which_secret_matched_by_index_and_id() -> None:
    body = b'{"operationId":"x"}'
    header = hubsig.sign(body, "new-secret")
    assert Verifier(["old-secret", "new-secret"]).verify(body, header).key_index == 1
    result = Verifier({"2025": "old-secret", "2026": "new-secret"}).verify(body, header)
    assert (result.key_index, result.key_id) == (1, "2026")
    assert "new-secret" not in repr(result)


def test_allow_list_refuses_a_known_but_disallowed_algorithm() -> None:
    body = b"{}"
    verifier = Verifier(SEED_SECRET, algorithms=["sha256"])
    assert verifier.verify(body, hubsig.sign(body, SEED_SECRET, "sha256")).algorithm == "sha256"
    with pytest.raises(DisallowedAlgorithm) as raised:
        verifier.verify(body, hubsig.sign(body, SEED_SECRET, "sha1"))
    assert raised.value.code == "disallowed_algorithm"
    assert raised.value.status == 401


def test_unknown_algorithm_in_allow_list_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError):
        Verifier("secret", algorithms=["md5"])
    with pytest.raises(ConfigurationError):
        Verifier("secret", algorithms=[])


@pytest.mark.parametrize("secret", ["", b"", [], {}, [""], None, 42])
def test_unusable_secrets_are_refused_when_the_verifier_is_built(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        Verifier(secret)


@pytest.mark.parametrize("secret", ["secret\n", " secret", "\tsecret\r\n"])
def test_whitespace_around_a_secret_warns_without_showing_it(secret: str) -> None:
    with pytest.warns(SecretWhitespaceWarning) as caught:
        Verifier(secret)
    assert "secret\n" not in str(caught[0].message)
    assert repr(secret.strip()) not in str(caught[0].message)


def test_clean_secret_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Verifier("clean-secret")


@given(
    body=st.binary(max_size=4096),
    secret=secrets_st,
    algorithm=algorithms_st,
    cuts=st.lists(st.integers(0, 4096), max_size=8),
)
def test_streaming_matches_one_shot_for_any_chunking(
    body: bytes, secret: str | bytes, algorithm: str, cuts: list[int]
) -> None:
    header = hubsig.sign(body, secret, algorithm)
    check = Verifier(["other", secret]).begin(header)
    bounds = sorted({0, len(body), *(cut for cut in cuts if cut <= len(body))})
    for start, end in itertools.pairwise(bounds):
        check.update(memoryview(body)[start:end])
    assert check.size == len(body)
    assert check.verify().key_index == 1


def test_streaming_refuses_a_tampered_body_and_a_bad_header_before_any_chunk() -> None:
    header = hubsig.sign(b"abc", "secret")
    check = Verifier("secret").begin(header)
    check.update(b"abd")
    with pytest.raises(SignatureMismatch):
        check.verify()
    with pytest.raises(MissingSignature):
        Verifier("secret").begin(None)


@given(body=st.binary(), secret=secrets_st, algorithm=algorithms_st)
def test_base64_digests_round_trip(body: bytes, secret: str | bytes, algorithm: str) -> None:
    header = hubsig.sign(body, secret, algorithm, encoding="base64")
    name, _, encoded = header.partition("=")
    key = secret.encode() if isinstance(secret, str) else secret
    assert base64.b64decode(encoded) == hmac.digest(key, body, algorithm)
    verifier = Verifier(secret, encoding="base64")
    assert verifier.verify(body, header).algorithm == name
    with pytest.raises(MalformedSignature):
        verifier.verify(body, hubsig.sign(body, secret, algorithm))


def test_errors_never_carry_the_secret_or_the_expected_digest(seed_body: bytes) -> None:
    expected = hubsig.sign(seed_body, SEED_SECRET)
    wrong_headers = [
        "sha1=" + "0" * 40,
        "sha1=" + expected[5:-2],
        "sha256=" + expected[5:],
        "md5=" + expected[5:],
        "",
    ]
    for header in wrong_headers:
        with pytest.raises(WebhookError) as raised:
            Verifier(SEED_SECRET).verify(seed_body, header)
        text = str(raised.value) + repr(raised.value)
        assert SEED_SECRET not in text
        assert expected[5:] not in text


def test_refusals_say_why_in_words_safe_to_send_back() -> None:
    body = b"{}"
    verifier = Verifier("secret", algorithms=["sha256", "sha512"])
    wrong = hubsig.sign(body, "other", "sha256")
    for header in (wrong, wrong.encode(), " " + wrong):
        with pytest.raises(SignatureMismatch) as raised:
            verifier.verify(body, header)
        assert raised.value.message == "the signature does not match the body"
    check = verifier.begin(wrong)
    check.update(body)
    with pytest.raises(SignatureMismatch) as raised:
        check.verify()
    assert raised.value.message == "the signature does not match the body"
    with pytest.raises(DisallowedAlgorithm) as disallowed:
        verifier.verify(body, hubsig.sign(body, "secret", "sha1"))
    assert disallowed.value.message == "this receiver does not accept sha1 signatures"
    with pytest.raises(ConfigurationError) as raised_config:
        Verifier("secret", encoding="hex ")  # type: ignore[arg-type]
    assert str(raised_config.value) == "encoding must be 'hex' or 'base64'"


def _no_parser(*args: object) -> None:
    raise AssertionError("a well-formed header must not need the full parser")


@pytest.mark.parametrize("algorithm", hubsig.ALGORITHMS)
def test_well_formed_headers_take_the_hot_path(
    algorithm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-request cost the benchmarks measure: no parsing, one HMAC per candidate key."""
    body = b'{"operationId":"hot"}'
    verifier = Verifier(["old", "new"])
    header = hubsig.sign(body, "new", algorithm)
    name, _, digest = header.partition("=")
    monkeypatch.setattr("hubsig._verifier.parse_signature_header", _no_parser)
    for spelling in (header, f"{name.upper()}={digest.upper()}", f"{name}={digest.upper()}"):
        assert verifier.verify(body, spelling).key_index == 1
    with pytest.raises(SignatureMismatch):
        verifier.verify(body + b" ", header)
    with pytest.raises(AssertionError, match="must not need the full parser"):
        verifier.verify(body, " " + header)  # only the full parser strips whitespace
