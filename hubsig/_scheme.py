"""Signature schemes: which header carries the signature, which hashes, which digest encoding.

Senders differ in exactly these three things, so they travel together as one
``Scheme`` and every adapter and CLI command takes one. The presets name the
senders hubsig is built for; ``Scheme(...)`` describes any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubsig._algorithms import ALGORITHMS, Algorithm, DigestEncoding, check_algorithms
from hubsig.errors import ConfigurationError

__all__ = [
    "GENESYS_CLOUD",
    "GENESYS_MULTICLOUD",
    "GITHUB",
    "SCHEMES",
    "WEBSUB",
    "Scheme",
    "check_header_name",
    "scheme_with",
]

# RFC 9110's token characters: what a header field name may contain.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Scheme:
    """Where and how a sender signs: ``header`` (any case), ``algorithms`` allowed, ``encoding``.

    A header whose name ends in ``-256`` promises SHA-256, so when
    ``algorithms`` is not given it allows ``sha256`` only; otherwise every
    algorithm WebSub names. Raises ``ConfigurationError`` for a header name
    that is not an HTTP token, an unknown algorithm or an unknown encoding.
    """

    header: str = "X-Hub-Signature"
    algorithms: tuple[Algorithm, ...] = ()
    encoding: DigestEncoding = "hex"

    def __init__(
        self,
        header: str = "X-Hub-Signature",
        algorithms: Iterable[str] | str | None = None,
        encoding: DigestEncoding = "hex",
    ) -> None:
        header = check_header_name(header)
        if algorithms is None:
            algorithms = ("sha256",) if header.endswith("-256") else ALGORITHMS
        if encoding not in ("hex", "base64"):
            raise ConfigurationError("encoding must be 'hex' or 'base64'")
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "algorithms", check_algorithms(algorithms))
        object.__setattr__(self, "encoding", encoding)

    @property
    def field_name(self) -> str:
        """The header's name in lower case, as hubsig looks it up."""
        return self.header.lower()


def check_header_name(name: object) -> str:
    """``name`` if it is a valid HTTP header name, else ``ConfigurationError``."""
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
        raise ConfigurationError(
            "the signature header must be an HTTP header name such as 'X-Hub-Signature' "
            "(letters, digits and '-', no spaces or ':')"
        )
    return name


def scheme_with(
    scheme: Scheme | None,
    header: str | None = None,
    algorithms: Iterable[str] | str | None = None,
    encoding: DigestEncoding | None = None,
) -> Scheme:
    """``scheme`` (``WEBSUB`` when ``None``) with the parts given separately in place of its own.

    A header changed without ``algorithms`` gets the header's own default
    (``-256``: sha256 only) unless a ``scheme`` was named.
    """
    if scheme is not None and not isinstance(scheme, Scheme):
        raise ConfigurationError("scheme must be a hubsig.Scheme, such as hubsig.GITHUB")
    base = scheme or WEBSUB
    if header is None and algorithms is None and encoding is None:
        return base
    if algorithms is None and (scheme is not None or header is None):
        algorithms = base.algorithms
    return Scheme(
        base.header if header is None else header,
        algorithms,
        base.encoding if encoding is None else encoding,
    )


GENESYS_MULTICLOUD = Scheme("X-Hub-Signature", ("sha1",), "hex")
"""Genesys Multicloud CX Interactions Webhook: ``X-Hub-Signature: sha1=<hex>``."""

GENESYS_CLOUD = Scheme("X-Hub-Signature-256", ("sha256",), "base64")
"""Genesys Cloud: ``X-Hub-Signature-256: sha256=<base64>``."""

GITHUB = Scheme("X-Hub-Signature-256", ("sha256",), "hex")
"""GitHub (and Meta): ``X-Hub-Signature-256: sha256=<hex>``."""

WEBSUB = Scheme("X-Hub-Signature", ALGORITHMS, "hex")
"""WebSub: ``X-Hub-Signature`` with sha1, sha256, sha384 or sha512, hex; hubsig's default."""

SCHEMES: dict[str, Scheme] = {
    "genesys-multicloud": GENESYS_MULTICLOUD,
    "genesys-cloud": GENESYS_CLOUD,
    "github": GITHUB,
    "websub": WEBSUB,
}
"""The presets by the names the command line takes (``--scheme github``)."""
