"""Secrets turned, once, into ready-to-use HMAC key states.

HMAC hashes the key padded to the block size before the message, for every
message. A receiver uses the same few keys for every request, so each key's
inner and outer hash states are computed here once and copied per request,
which is what makes ``Verifier.verify`` cheaper than a one-shot
``hmac.digest`` on small bodies.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from hubsig.errors import ConfigurationError, SecretWhitespaceWarning

__all__ = ["HashState", "KeyStates", "Secret", "SecretWhitespaceWarning", "Secrets", "load_secrets"]

Secret: TypeAlias = str | bytes
"""A shared secret: text (encoded as UTF-8) or raw bytes."""

Secrets: TypeAlias = Secret | Sequence[Secret] | Mapping[str, Secret]
"""One secret, several (rotation; the result names the index), or key id → secret."""

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class HashState(Protocol):
    """The part of a ``hashlib`` object that HMAC needs."""

    def copy(self) -> HashState: ...
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class KeyStates:
    """One key's HMAC states for one algorithm: ``H(K ^ ipad)`` and ``H(K ^ opad)``."""

    inner: HashState
    outer: HashState

    @classmethod
    def compute(cls, key: bytes, algorithm: str) -> KeyStates:
        inner: HashState = hashlib.new(algorithm)
        outer: HashState = hashlib.new(algorithm)
        block_size: int = hashlib.new(algorithm).block_size
        if len(key) > block_size:
            key = hashlib.new(algorithm, key).digest()
        key = key.ljust(block_size, b"\0")
        inner.update(key.translate(_INNER_PAD))
        outer.update(key.translate(_OUTER_PAD))
        return cls(inner, outer)

    def mac(self, body: bytes | bytearray | memoryview) -> bytes:
        """HMAC of ``body`` under this key, from the precomputed states."""
        inner = self.inner.copy()
        inner.update(body)
        return self.finish(inner)

    def finish(self, inner: HashState) -> bytes:
        """The HMAC digest from an inner state that has hashed the whole body."""
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def load_secrets(secrets: Secrets) -> list[tuple[str | None, bytes]]:
    """Normalise the accepted secret forms into ``(key_id, key bytes)`` pairs.

    Raises ``ConfigurationError`` for no secret, an empty one, ``None`` or a
    value that is neither text nor bytes; warns with
    ``SecretWhitespaceWarning`` for whitespace around a text secret,
    pointing at the caller's line (bytes are keys, taken as they are).
    Neither message contains the secret.
    """
    pairs: list[tuple[str | None, object]]
    if isinstance(secrets, (str, bytes, bytearray)):
        pairs = [(None, secrets)]
    elif isinstance(secrets, Mapping):
        pairs = [(str(key_id), secret) for key_id, secret in secrets.items()]
    elif isinstance(secrets, Sequence):
        pairs = [(None, secret) for secret in secrets]
    else:
        raise ConfigurationError("secrets must be text, bytes, a list of them, or a mapping")
    if not pairs:
        raise ConfigurationError("no secret given: every delivery would be refused")
    return [
        (key_id, _secret_bytes(secret, position)) for position, (key_id, secret) in enumerate(pairs)
    ]


def _secret_bytes(secret: object, position: int) -> bytes:
    # By position only: a key id could be the secret itself, swapped by mistake.
    label = f"secret #{position}"
    if isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray)):
        key = bytes(secret)
    else:
        raise ConfigurationError(f"{label} must be text or bytes, not {type(secret).__name__}")
    if not key:
        raise ConfigurationError(f"{label} is empty: an empty secret verifies nothing")
    if isinstance(secret, str) and not secret.strip():
        raise ConfigurationError(f"{label} is only whitespace: it is not the secret you meant")
    if isinstance(secret, str) and secret != secret.strip():
        warnings.warn(
            f"{label} has leading or trailing whitespace; a copied newline is the usual cause "
            "of every signature failing",
            SecretWhitespaceWarning,
            stacklevel=_stacklevel_outside_hubsig(),
        )
    return key


def _stacklevel_outside_hubsig() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line, not into hubsig.

    Counted from the function that calls ``warnings.warn``; frames of hubsig's
    own files, and of the ``__init__`` that ``dataclasses`` generates, are skipped.
    """
    level = 1
    frame = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE) or frame.f_code.co_filename == "<string>"
    ):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level
