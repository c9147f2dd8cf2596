"""Constant-time verification of ``X-Hub-Signature`` over the raw body.

``Verifier`` is built once per receiver and used for every request; ``sign``
and ``verify`` are the one-call forms. Digests are compared as bytes with
``hmac.compare_digest``, never as strings, so no header can turn into a
``TypeError`` and a 500.
"""

from __future__ import annotations

import hmac
from binascii import unhexlify
from collections.abc import Iterable
from dataclasses import dataclass
from hmac import compare_digest

from hubsig._algorithms import ALGORITHMS, DIGEST_SIZES, Algorithm, DigestEncoding, check_algorithms
from hubsig._secrets import HashState, KeyStates, Secret, Secrets, load_secrets
from hubsig._signature_header import format_signature, parse_signature_header
from hubsig.errors import ConfigurationError, DisallowedAlgorithm, SignatureMismatch

__all__ = ["IncrementalVerification", "Verification", "Verifier", "sign", "verify"]

Body = bytes | bytearray | memoryview
_MISMATCH = "the signature does not match the body"


@dataclass(frozen=True, slots=True)
class Verification:
    """A signature that matched: which algorithm, and which secret (never its value)."""

    algorithm: str
    key_index: int
    key_id: str | None = None


_Candidate = tuple[KeyStates, Verification]
_FastCandidate = tuple[HashState, HashState, Verification]


class Verifier:
    """Checks signature headers against one or more secrets, built once per receiver.

    ``secrets`` is one secret, a list (rotation: the first that matches wins and
    ``Verification.key_index`` names it) or a mapping of key id to secret.
    ``algorithms`` is an allow-list: a header naming another known algorithm
    raises ``DisallowedAlgorithm``, which is how a receiver refuses ``sha1``.
    Bad configuration raises ``ConfigurationError`` here, not per request.
    """

    __slots__ = ("_algorithms", "_encoding", "_fast", "_keys")

    def __init__(
        self,
        secrets: Secrets,
        *,
        algorithms: Iterable[str] | str = ALGORITHMS,
        encoding: DigestEncoding = "hex",
    ) -> None:
        if encoding not in ("hex", "base64"):
            raise ConfigurationError("encoding must be 'hex' or 'base64'")
        self._algorithms: tuple[Algorithm, ...] = check_algorithms(algorithms)
        self._encoding: DigestEncoding = encoding
        loaded = load_secrets(secrets)
        self._keys: dict[str, tuple[_Candidate, ...]] = {
            algorithm: tuple(
                (KeyStates.compute(key, algorithm), Verification(algorithm, index, key_id))
                for index, (key_id, key) in enumerate(loaded)
            )
            for algorithm in self._algorithms
        }
        # The hot path: header names exactly as senders write them, mapped to
        # the hex length they must have and each key's raw hash states.
        self._fast: dict[str, tuple[int, tuple[_FastCandidate, ...]]] = {}
        if encoding == "hex":
            for algorithm, candidates in self._keys.items():
                entry = (
                    2 * DIGEST_SIZES[algorithm],
                    tuple((states.inner, states.outer, result) for states, result in candidates),
                )
                self._fast[algorithm] = self._fast[algorithm.upper()] = entry

    @property
    def algorithms(self) -> tuple[Algorithm, ...]:
        """The allowed algorithms, in the order given."""
        return self._algorithms

    @property
    def encoding(self) -> DigestEncoding:
        """How digests are written in the header: ``"hex"`` or ``"base64"``."""
        return self._encoding

    def verify(self, body: Body, signature_header: str | bytes | None) -> Verification:
        """Return which key signed ``body``, or raise a ``WebhookError`` saying why none did."""
        if type(signature_header) is str:
            # Fast path for a well-formed header; anything unusual falls through
            # to the full parser below, which gives the same answer or the error.
            name, _, digest_text = signature_header.partition("=")
            entry = self._fast.get(name)
            if entry is not None and len(digest_text) == entry[0]:
                try:
                    received = unhexlify(digest_text)
                except ValueError:
                    pass
                else:
                    for inner, outer, result in entry[1]:
                        hashed = inner.copy()
                        hashed.update(body)
                        mac = outer.copy()
                        mac.update(hashed.digest())
                        if compare_digest(mac.digest(), received):
                            return result
                    raise SignatureMismatch(_MISMATCH)
        candidates, received = self._candidates(signature_header)
        for states, result in candidates:
            if compare_digest(states.mac(body), received):
                return result
        raise SignatureMismatch(_MISMATCH)

    def begin(self, signature_header: str | bytes | None) -> IncrementalVerification:
        """Start checking a body that arrives in chunks.

        The header is parsed now, so a missing or malformed signature is refused
        before any of the body is read. Feed chunks to ``update`` and call
        ``verify`` at the end; nothing keeps the chunks.
        """
        return IncrementalVerification(*self._candidates(signature_header))

    def _candidates(
        self, signature_header: str | bytes | None
    ) -> tuple[tuple[_Candidate, ...], bytes]:
        algorithm, received = parse_signature_header(signature_header, self._encoding)
        candidates = self._keys.get(algorithm)
        if candidates is None:
            raise DisallowedAlgorithm(f"this receiver does not accept {algorithm} signatures")
        return candidates, received


class IncrementalVerification:
    """A signature check in progress: hashes each chunk once per candidate key."""

    __slots__ = ("_candidates", "_inners", "_received", "size")

    def __init__(self, candidates: tuple[_Candidate, ...], received: bytes) -> None:
        self._candidates = candidates
        self._inners: list[HashState] = [states.inner.copy() for states, _ in candidates]
        self._received = received
        self.size = 0
        """How many body bytes have been fed so far (for size limits)."""

    def update(self, chunk: Body) -> None:
        """Hash the next piece of the body."""
        for inner in self._inners:
            inner.update(chunk)
        self.size += len(chunk)

    def verify(self) -> Verification:
        """Return which key signed the body fed so far, or raise ``SignatureMismatch``."""
        for (states, result), inner in zip(self._candidates, self._inners, strict=True):
            if compare_digest(states.finish(inner), self._received):
                return result
        raise SignatureMismatch(_MISMATCH)


def sign(
    body: Body,
    secret: Secret,
    algorithm: str = "sha1",
    *,
    encoding: DigestEncoding = "hex",
) -> str:
    """The header value a sender puts in ``X-Hub-Signature`` for ``body``, e.g. ``sha1=…``."""
    (chosen,) = check_algorithms(algorithm)
    ((_, key),) = load_secrets(secret)
    return format_signature(chosen, hmac.digest(key, body, chosen), encoding)


def verify(
    body: Body,
    signature_header: str | bytes | None,
    secret: Secrets,
    *,
    algorithms: Iterable[str] | str = ALGORITHMS,
    encoding: DigestEncoding = "hex",
) -> Verification:
    """One-call form of ``Verifier(secret, ...).verify(body, signature_header)``.

    A receiver handling many requests should build one ``Verifier`` instead:
    this form prepares the keys again on every call.
    """
    return Verifier(secret, algorithms=algorithms, encoding=encoding).verify(body, signature_header)
