"""Why does a signature not match? Likely causes, found without revealing the expected digest.

Each check re-signs a plausible variant of what the sender might have done
(a trailing newline added or dropped, line endings converted, the JSON
re-serialized, unicode escaped, whitespace around the secret) and reports
the variants whose signature matches the received one. Only yes/no answers
and lengths come out: never a digest, never a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hubsig._algorithms import ALGORITHMS, DIGEST_SIZES
from hubsig._keys import Secret, SecretWhitespaceWarning, load_secrets
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
    try:
        document = json.loads(body)
    except ValueError:
        return []
    variants = {
        "compact": {"separators": (",", ":")},
        "spaced (json.dumps defaults)": {},
        "sorted keys, compact": {"separators": (",", ":"), "sort_keys": True},
        "sorted keys, spaced": {"sort_keys": True},
        "indented by 2": {"indent": 2},
        "indented by 2, sorted keys": {"indent": 2, "sort_keys": True},
        "indented by 4": {"indent": 4},
        "indented by 4, sorted keys": {"indent": 4, "sort_keys": True},
    }
    findings = []
    # Bodies a whitespace check explains already are not re-serializations.
    tried = {body, body.rstrip(b" \t\r\n")}
    for name, options in variants.items():
        for ensure_ascii in (False, True):
            text = json.dumps(document, ensure_ascii=ensure_ascii, **options)  # type: ignore[arg-type]
            candidate = text.encode()
            if candidate in tried:  # an ASCII document reads the same either way
                continue
            tried.add(candidate)
            if matches(candidate):
                escaped = (
                    ""
                    if text.isascii() and ensure_ascii is False
                    else (
                        " with \\u-escaped unicode" if ensure_ascii else " with raw UTF-8 unicode"
                    )
                )
                findings.append(
                    Finding(
                        "reserialized_json",
                        f"the signature matches the same JSON written {name}{escaped}: the body "
                        "was re-serialized after signing (verify the raw bytes)",
                    )
                )
    if not findings and not body.isascii():
        escaped_body = json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()
        if matches(escaped_body):
            findings.append(Finding("unicode_escaping", "the sender signed \\u-escaped unicode"))
    return findings


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
