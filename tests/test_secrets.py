"""Secrets and HMAC key states: long keys, the block-size boundary, and configuration errors."""

from __future__ import annotations

import hashlib
import hmac
import warnings
from typing import Any

import pytest

import hubsig
from hubsig import ConfigurationError, SecretWhitespaceWarning, SignatureMismatch, Verifier
from hubsig._secrets import KeyStates, load_secrets
from tests.known_answers import load_vectors, vector_body, vector_secret

LONG_KEY_CASES = load_vectors("hmac_long_keys.json")
BLOCK_SIZES = {"sha1": 64, "sha256": 64, "sha384": 128, "sha512": 128}


def _ids(case: dict[str, Any]) -> str:
    return str(case["name"])


def _key(case: dict[str, Any]) -> bytes:
    secret = vector_secret(case)
    return secret.encode() if isinstance(secret, str) else secret


def test_the_vectors_cover_keys_on_both_sides_of_every_block_size() -> None:
    for algorithm, block in BLOCK_SIZES.items():
        lengths = {len(_key(c)) for c in LONG_KEY_CASES if c["algorithm"] == algorithm}
        assert {block, block + 1} <= lengths
        assert max(lengths) > block
    assert {len(_key(c)) for c in LONG_KEY_CASES} >= {80, 131}


@pytest.mark.parametrize("case", LONG_KEY_CASES, ids=_ids)
def test_long_key_known_answers(case: dict[str, Any]) -> None:
    body, secret, header = vector_body(case), vector_secret(case), case["header"]
    assert len(_key(case)) == case["key_length"]
    result = Verifier(secret).verify(body, header)
    assert (result.algorithm, result.key_index) == (case["algorithm"], 0)
    assert hubsig.sign(body, secret, case["algorithm"]) == header
    expected = header.partition("=")[2]
    assert KeyStates.compute(_key(case), case["algorithm"]).mac(body).hex() == expected


@pytest.mark.parametrize("case", LONG_KEY_CASES, ids=_ids)
def test_long_key_known_answers_refuse_a_changed_body_or_a_neighbouring_key(
    case: dict[str, Any],
) -> None:
    body, key, header = vector_body(case), _key(case), case["header"]
    with pytest.raises(SignatureMismatch):
        Verifier(key).verify(body[:-1] + bytes([body[-1] ^ 1]), header)
    # one byte shorter or longer can cross the block size (a key padded with a zero
    # byte is the same HMAC key below the block size, so the added byte is not zero)
    for neighbour in (key[:-1], key + b"\1", key[:-1] + bytes([key[-1] ^ 1])):
        with pytest.raises(SignatureMismatch):
            Verifier(neighbour).verify(body, header)


@pytest.mark.parametrize("algorithm", sorted(BLOCK_SIZES))
def test_every_key_length_up_to_twice_the_block_size_agrees_with_hmac(algorithm: str) -> None:
    body = b'{"operationId":"op"}'
    for size in range(1, 2 * BLOCK_SIZES[algorithm] + 3):
        key = bytes((7 * index + size) % 256 for index in range(size))
        states = KeyStates.compute(key, algorithm)
        assert states.mac(body) == hmac.digest(key, body, algorithm), size
        assert states.mac(body) == states.mac(body)  # the precomputed states are copied, not used


def test_a_key_longer_than_the_block_is_its_digest_and_nothing_else() -> None:
    long_key = b"k" * 200
    body = b"body"
    for algorithm in BLOCK_SIZES:
        digest_key = hashlib.new(algorithm, long_key).digest()
        assert hubsig.sign(body, long_key, algorithm) == hubsig.sign(body, digest_key, algorithm)
        Verifier(digest_key).verify(body, hubsig.sign(body, long_key, algorithm))


def test_every_secret_form_is_loaded_in_order_with_its_key_id() -> None:
    assert load_secrets("s") == [(None, b"s")]
    assert load_secrets(b"\xff") == [(None, b"\xff")]
    assert load_secrets(bytearray(b"b")) == [(None, b"b")]  # type: ignore[arg-type]
    assert load_secrets(["a", b"b"]) == [(None, b"a"), (None, b"b")]
    assert load_secrets(("a",)) == [(None, b"a")]
    assert load_secrets({"2025": "old", 2026: "new"}) == [("2025", b"old"), ("2026", b"new")]  # type: ignore[dict-item]
    assert load_secrets("\u00e9") == [(None, b"\xc3\xa9")]


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        (42, "secrets must be text, bytes, a list of them, or a mapping"),
        (None, "secrets must be text, bytes, a list of them, or a mapping"),
        ([], "no secret given: every delivery would be refused"),
        ({}, "no secret given: every delivery would be refused"),
        ([""], "secret #0 is empty: an empty secret verifies nothing"),
        (["ok", b""], "secret #1 is empty: an empty secret verifies nothing"),
        ({"2026": ""}, "secret #0 is empty: an empty secret verifies nothing"),
        (["ok", 42], "secret #1 must be text or bytes, not int"),
        ({"k": None}, "secret #0 must be text or bytes, not NoneType"),
        ({"s3cr3t-value": 1}, "secret #0 must be text or bytes, not int"),  # key and value swapped
        (["ok", " \n"], "secret #1 is only whitespace: it is not the secret you meant"),
        ({"k": "\t"}, "secret #0 is only whitespace: it is not the secret you meant"),
    ],
)
def test_unusable_secrets_say_which_one_and_why(secrets: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Verifier(secrets)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("secrets", "label"),
    [
        ("secret\n", "secret #0"),
        (["ok", " secret"], "secret #1"),
        ({"2026": "secret\r\n"}, "secret #0"),
    ],
)
def test_the_whitespace_warning_names_the_secret_by_position(secrets: Any, label: str) -> None:
    with pytest.warns(SecretWhitespaceWarning) as caught:
        Verifier(secrets)
    assert str(caught[0].message) == (
        f"{label} has leading or trailing whitespace; a copied newline is the usual cause "
        "of every signature failing"
    )


@pytest.mark.parametrize(
    "secret", [b"secret\n", b" secret", b"\n\xff\xfe\x00binary", b"\x80raw\x0b"]
)
def test_byte_keys_are_taken_as_they_are_whitespace_included(secret: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verifier = Verifier(secret)
    body = b"{}"
    verifier.verify(body, hubsig.sign(body, secret))
    with pytest.raises(SignatureMismatch):
        verifier.verify(body, hubsig.sign(body, secret.strip()))


def _warned_at(build: Any) -> tuple[str, int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build()
    assert [w.category for w in caught] == [SecretWhitespaceWarning]
    return caught[0].filename, caught[0].lineno


@pytest.mark.parametrize(
    "build",
    [
        lambda: Verifier("secret\n"),
        lambda: Verifier({"k": " secret"}),
        lambda: hubsig.sign(b"", "secret\n"),
        lambda: hubsig.verify(b"", hubsig.sign(b"", "ok"), ["ok", "secret\t"]),
        lambda: hubsig.WebhookConfig(secret="secret\n"),
    ],
    ids=["Verifier", "Verifier-mapping", "sign", "verify", "WebhookConfig"],
)
def test_the_whitespace_warning_points_at_the_callers_line(build: Any) -> None:
    assert _warned_at(build) == (__file__, build.__code__.co_firstlineno)
