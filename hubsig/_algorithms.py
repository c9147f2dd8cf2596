"""The HMAC hash algorithms a hub may name in its signature header.

WebSub lists sha1, sha256, sha384 and sha512; Genesys signs with sha1,
GitHub and Meta with sha256. The table gives each digest's size so a header
of the wrong length is refused before any hashing happens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from hubsig.errors import ConfigurationError

__all__ = ["ALGORITHMS", "DIGEST_SIZES", "Algorithm", "DigestEncoding", "check_algorithms"]

Algorithm = Literal["sha1", "sha256", "sha384", "sha512"]
"""An algorithm name as it appears, lower-cased, before ``=`` in the header."""

DigestEncoding = Literal["hex", "base64"]
"""How the digest after ``=`` is written: hex (WebSub, Genesys) or base64."""

DIGEST_SIZES: dict[str, int] = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
ALGORITHMS: tuple[Algorithm, ...] = ("sha1", "sha256", "sha384", "sha512")
_KNOWN: dict[str, Algorithm] = {name: name for name in ALGORITHMS}


def check_algorithms(algorithms: Iterable[str] | str) -> tuple[Algorithm, ...]:
    """Validate an allow-list once, at construction; return it as a tuple without repeats.

    Raises ``ConfigurationError`` for an empty list or a name hubsig does not know.
    """
    names = [algorithms] if isinstance(algorithms, str) else list(algorithms)
    chosen: list[Algorithm] = []
    for name in names:
        known = _KNOWN.get(name.lower()) if isinstance(name, str) else None
        if known is None:
            choices = ", ".join(ALGORITHMS)
            raise ConfigurationError(f"unknown algorithm {name!r}; choose from {choices}")
        if known not in chosen:
            chosen.append(known)
    if not chosen:
        raise ConfigurationError("the algorithm allow-list is empty, so every delivery would fail")
    return tuple(chosen)
