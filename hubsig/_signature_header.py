"""Reading and writing the ``X-Hub-Signature`` header value, ``<algorithm>=<digest>``.

Parsing is strict where strictness is safe and lenient only where senders
really differ: the algorithm name is case-insensitive, hex digits may be in
either case, and surrounding whitespace is ignored. Everything else that is
off is a ``MalformedSignature``; no ``ValueError`` or ``binascii.Error``
escapes, whatever bytes a caller sends.
"""

from __future__ import annotations

import base64
import binascii

from hubsig._algorithms import DIGEST_SIZES, DigestEncoding
from hubsig.errors import MalformedSignature, MissingSignature, UnsupportedAlgorithm

__all__ = ["format_signature", "parse_signature_header"]

_PRINTABLE_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def parse_signature_header(
    header: str | bytes | None, encoding: DigestEncoding = "hex"
) -> tuple[str, bytes]:
    """Split a header value into its lower-case algorithm name and raw digest bytes.

    Raises ``MissingSignature`` for an absent or blank header,
    ``UnsupportedAlgorithm`` for a name hubsig does not know, and
    ``MalformedSignature`` for anything else that is not a digest of exactly
    the algorithm's size.
    """
    if header is None:
        raise MissingSignature("the signature header is missing")
    if isinstance(header, (bytes, bytearray)):
        header = bytes(header).decode("latin-1")
    text = header.strip()
    if not text:
        raise MissingSignature("the signature header is empty")
    name, separator, digest_text = text.partition("=")
    if not separator:
        raise MalformedSignature("the signature header must look like '<algorithm>=<digest>'")
    algorithm = name.lower()
    size = DIGEST_SIZES.get(algorithm)
    if size is None:
        raise UnsupportedAlgorithm(f"unsupported signature algorithm {_quoted_name(algorithm)}")
    digest = _decode_digest(digest_text, size, encoding)
    if digest is None:
        raise MalformedSignature(f"the {algorithm} digest must be {_expected_form(size, encoding)}")
    return algorithm, digest


def format_signature(algorithm: str, digest: bytes, encoding: DigestEncoding = "hex") -> str:
    """Write ``digest`` as a header value: ``sha1=<lowercase hex>`` or ``sha1=<base64>``."""
    if encoding == "hex":
        return f"{algorithm}={digest.hex()}"
    return f"{algorithm}={base64.b64encode(digest).decode('ascii')}"


def _decode_digest(text: str, size: int, encoding: DigestEncoding) -> bytes | None:
    """The digest bytes, or ``None`` when ``text`` is not exactly ``size`` bytes in ``encoding``."""
    try:
        if encoding == "hex":
            # fromhex skips inner whitespace; the length check on the text refuses it.
            if len(text) != 2 * size:
                return None
            digest = bytes.fromhex(text)
        else:
            digest = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
    return digest if len(digest) == size else None


def _expected_form(size: int, encoding: DigestEncoding) -> str:
    if encoding == "hex":
        return f"{2 * size} hexadecimal characters"
    return f"{size} bytes in base64"


def _quoted_name(name: str) -> str:
    """Echo an algorithm name only when it is short and plain, never a hostile blob."""
    if 0 < len(name) <= 16 and set(name) <= _PRINTABLE_NAME:
        return repr(name)
    return "(unprintable name)"
