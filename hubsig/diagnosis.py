"""Why does a signature not match? Likely causes, found without revealing the expected digest.

Each check re-signs a plausible variant of what the sender might have done
(a trailing newline added or dropped, line endings converted, the JSON
re-serialized by a common ``json.dumps`` call, sorted keys undone, unicode
escaped, whitespace around the secret) and reports the variants whose
signature matches the received one, naming the ``json.dumps`` call. Only
yes/no answers and lengths come out: never a digest, never a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hubsig._algorithms import ALGORITHMS, DIGEST_SIZES
from hubsig._secrets import Secret, SecretWhitespaceWarning, load_secrets
from hubsig._verifier import Verifier
from hubsig.errors import ConfigurationError, WebhookError

__all__ = ["Finding", "explain_mismatch"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation: a stable ``code`` and a sentence for humans."""

    code: str
    message: str


def explain_mismatch(
    body: bytes,
    signature_header: str | None,
    secrets: Sequence[Secret],
    *,
    algorithms: Sequence[str] = ALGORITHMS,
) -> list[Finding]:
    """Observations on a delivery whose signature does not verify, most telling first."""
    with warnings.catch_warnings():
        # Whitespace around a secret is one of the causes looked for, not a nuisance here.
        warnings.simplefilter("ignore", SecretWhitespaceWarning)
        return _explain(body, signature_header, secrets, algorithms)


def _explain(
    body: bytes, signature_header: str | None, secrets: Sequence[Secret], algorithms: Sequence[str]
) -> list[Finding]:
    findings = [Finding("body_length", f"the body is {len(body)} bytes")]
    signature_header, repairs = _repaired_header(signature_header)
    findings.extend(repairs)
    verifier = Verifier(list(secrets), algorithms=list(algorithms))
    try:
        verifier.begin(signature_header)
    except WebhookError as error:
        findings.append(Finding("header", f"the header itself is refused: {error.message}"))
        findings.extend(_encoding_hint(signature_header))
        return findings

    def matches(candidate_body: bytes, candidate_secrets: Sequence[Secret] = secrets) -> bool:
        try:
            Verifier(list(candidate_secrets), algorithms=list(algorithms)).verify(
                candidate_body, signature_header
            )
        except (WebhookError, ConfigurationError):
            return False
        return True

    if repairs and matches(body):
        findings.append(
            Finding("matches_once_corrected", "corrected so, the signature matches this body")
        )
        return findings
    causes: list[Finding] = []
    for check in _BODY_CHECKS:
        causes.extend(check(body, matches))
    causes.extend(_secret_whitespace(body, secrets, matches))
    findings.extend(dict.fromkeys(causes))  # one line per distinct finding
    if len(findings) == 1 + len(repairs):
        findings.append(
            Finding(
                "no_known_cause",
                "no common mistake explains it: check the secret is this channel's secret",
            )
        )
    tried = ", ".join(verifier.algorithms)
    findings.append(Finding("tried", f"tried {len(secrets)} key(s) with {tried} allowed"))
    return findings


Matcher = Callable[..., bool]


def _trailing_newline(body: bytes, matches: Matcher) -> list[Finding]:
    for ending in (b"\r\n", b"\n"):
        if body.endswith(ending) and matches(body[: -len(ending)]):
            name = "carriage return and newline" if ending == b"\r\n" else "newline"
            return [
                Finding(
                    "trailing_newline",
                    f"the signature matches the body without its trailing {name}: "
                    "something (an editor, echo, a file) added it after signing",
                )
            ]
    if not body.endswith(b"\n") and matches(body + b"\n"):
        return [
            Finding(
                "missing_newline",
                "the signature matches the body with a trailing newline: it was lost in transit",
            )
        ]
    return []


def _trailing_whitespace(body: bytes, matches: Matcher) -> list[Finding]:
    stripped = body.rstrip(b" \t\r\n")
    newline_only = body in (stripped + b"\n", stripped + b"\r\n")  # the newline check's case
    if stripped != body and not newline_only and matches(stripped):
        return [
            Finding(
                "trailing_whitespace",
                "the signature matches the body without its trailing whitespace: "
                "spaces or a newline were added after signing",
            )
        ]
    return []


def _line_endings(body: bytes, matches: Matcher) -> list[Finding]:
    if b"\r\n" in body and matches(body.replace(b"\r\n", b"\n")):
        return [Finding("line_endings", "the signature matches the body with \\n line endings")]
    if b"\n" in body and b"\r\n" not in body and matches(body.replace(b"\n", b"\r\n")):
        return [Finding("line_endings", "the signature matches the body with \\r\\n line endings")]
    return []


def _reserialized_json(body: bytes, matches: Matcher) -> list[Finding]:
    """The ``json.dumps`` call whose output the signature matches, either way round.

    The sender may have signed a re-serialization of the body received
    (spacing, indentation, sorted keys): that is tried directly. Or the body
    received is the re-serialization, most often with sorted keys, which
    lose the sender's order: the sender's usual order (the Interactions
    Webhook's, ``_WIRE_ORDER``) is then restored and tried; when it does not
    match either, the sorted keys are still reported, rather than no cause.
    """
    try:
        document = json.loads(body)
    except ValueError:
        return []
    # Bodies a whitespace check explains already are not re-serializations.
    tried = {body, body.rstrip(b" \t\r\n")}
    findings = [
        Finding(
            "reserialized_json",
            f"the signature matches {call}: the body was re-serialized after signing "
            "(verify the raw bytes)",
        )
        for call in _matching_dumps(document, matches, tried)
    ]
    sorted_by = _sorted_by(body, document)
    if sorted_by is not None and not findings:
        findings = [
            Finding(
                "reserialized_json",
                f"the body was re-serialized with {sorted_by} after signing: the signature "
                f"matches the same JSON in the sender's key order, written as {call} "
                "(verify the raw bytes)",
            )
            for call in _matching_dumps(_in_wire_order(document), matches, tried)
        ] or [
            Finding(
                "sorted_keys",
                f"the body reads exactly as {sorted_by} writes it: unless the sender sorts "
                "its keys, it was re-serialized after signing, and the sender's key order "
                "cannot be rebuilt to check (verify the raw bytes)",
            )
        ]
    return findings


_LAYOUTS: tuple[dict[str, Any], ...] = (
    {"separators": (",", ":")},
    {},
    {"indent": 2},
    {"indent": 4},
)
"""How ``json.dumps`` is commonly asked to lay a document out; each is tried unsorted and sorted."""

_WIRE_ORDER = (
    "operationId",
    "data",
    "entities",
    "event",
    "entity",
    "id",
    "mediaType",
    "interactionSubtype",
    "selfUri",
)
"""The Interactions Webhook's key order (also ``hubsig.testing``'s): what sorting keys undoes."""


def _dumps_variants(document: Any) -> list[tuple[str, bytes]]:
    """Each common ``json.dumps`` of ``document``: the call as a user writes it, and its bytes."""
    unicode = not json.dumps(document, ensure_ascii=False).isascii()
    variants = []
    for sort_keys in (False, True):
        for layout in _LAYOUTS:
            options = {"sort_keys": True, **layout} if sort_keys else dict(layout)
            for ensure_ascii in (True, False):
                text = json.dumps(document, ensure_ascii=ensure_ascii, **options)
                if not unicode:
                    call = _dumps_call(options)
                elif ensure_ascii:
                    call = _dumps_call(options) + " (unicode \\u-escaped, json.dumps's default)"
                else:
                    call = _dumps_call({**options, "ensure_ascii": False})
                variants.append((call, text.encode()))
    return variants


def _dumps_call(options: dict[str, Any]) -> str:
    """``json.dumps(body, sort_keys=True, indent=2)``: the call that writes these bytes."""
    shown = []
    for name, value in options.items():
        if name == "separators":
            shown.append('separators=(",", ":")')
        else:
            shown.append(f"{name}={value!r}")
    return f"json.dumps({', '.join(['body', *shown])})"


def _matching_dumps(document: Any, matches: Matcher, tried: set[bytes]) -> list[str]:
    """The calls whose bytes the signature matches, once per distinct output."""
    found = []
    for call, candidate in _dumps_variants(document):
        if candidate in tried:  # an ASCII document reads the same either way
            continue
        tried.add(candidate)
        if matches(candidate):
            found.append(call)
    return found


def _sorted_by(body: bytes, document: Any) -> str | None:
    """The sorted-keys ``json.dumps`` call that writes exactly ``body`` (a trailing newline
    aside), if the document has keys whose order sorting could have changed; else ``None``."""
    if not _has_key_order(document):
        return None
    written = {body, body[:-1] if body.endswith(b"\n") else body}
    for call, candidate in _dumps_variants(document):
        if "sort_keys=True" in call and candidate in written:
            return call
    return None


def _has_key_order(value: Any) -> bool:
    if isinstance(value, dict):
        return len(value) > 1 or any(_has_key_order(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_key_order(item) for item in value)
    return False


def _in_wire_order(value: Any) -> Any:
    """``value`` with each object's keys in ``_WIRE_ORDER``, keys it does not name after."""
    if isinstance(value, list):
        return [_in_wire_order(item) for item in value]
    if not isinstance(value, dict):
        return value
    rank = {name: position for position, name in enumerate(_WIRE_ORDER)}
    ordered = sorted(value, key=lambda name: rank.get(name, len(rank)))  # stable: rest as found
    return {name: _in_wire_order(value[name]) for name in ordered}


def _secret_whitespace(body: bytes, secrets: Sequence[Secret], matches: Matcher) -> list[Finding]:
    for _, key in load_secrets(list(secrets)):
        stripped = key.strip()
        if stripped != key and stripped and matches(body, [stripped]):
            return [
                Finding(
                    "secret_whitespace",
                    "the signature matches a secret without its surrounding whitespace: "
                    "check the secret for a copied newline or space",
                )
            ]
        for extra in (b"\n", b"\r\n", b" "):
            if matches(body, [key + extra]):
                return [
                    Finding(
                        "secret_whitespace",
                        "the sender's secret has trailing whitespace that this one lacks",
                    )
                ]
    return []


def _repaired_header(signature_header: str | None) -> tuple[str | None, list[Finding]]:
    """A header value as it was probably meant, and what was wrong with how it was given.

    A whole pasted header line (``X-Hub-Signature: sha1=…``) is cut to its
    value; a bare hex digest gets the algorithm its length implies.
    """
    if not signature_header:
        return signature_header, []
    text = signature_header.strip()
    findings = []
    name, colon, value = text.partition(":")
    if colon and "=" not in name and name.strip():
        text = value.strip()
        findings.append(
            Finding(
                "pasted_header_line",
                f"the value includes the header's name ({name.strip()[:40]}:): "
                "pass only what follows the colon",
            )
        )
    if "=" not in text and all(c in _HEX for c in text):
        for algorithm, size in DIGEST_SIZES.items():
            if len(text) == 2 * size:
                findings.append(
                    Finding(
                        "bare_digest",
                        f"the value is a bare {2 * size}-digit hex digest: the header reads "
                        f"'{algorithm}=<digest>'",
                    )
                )
                text = f"{algorithm}={text}"
                break
    return text, findings


_HEX = frozenset("0123456789abcdefABCDEF")


def _encoding_hint(signature_header: str | None) -> list[Finding]:
    if not signature_header or "=" not in signature_header:
        return []
    name, _, digest = signature_header.strip().partition("=")
    size = DIGEST_SIZES.get(name.lower())
    try:
        decoded = base64.b64decode(digest, validate=True)
    except (ValueError, binascii.Error):
        return []
    if size is not None and len(decoded) == size:
        return [
            Finding(
                "base64_digest",
                "the digest is base64, not hex: use --encoding base64 (Genesys Cloud: "
                "--scheme genesys-cloud)",
            )
        ]
    return []


_BODY_CHECKS = (_trailing_newline, _trailing_whitespace, _line_endings, _reserialized_json)
