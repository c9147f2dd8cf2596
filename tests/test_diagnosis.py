"""--explain: one test per diagnosis, and none of them ever shows a digest or a secret."""

from __future__ import annotations

import json

import pytest

import hubsig
from hubsig.diagnosis import Finding, explain_mismatch

SECRET = "diagnosis-secret"
DOCUMENT = {
    "operationId": "op",
    "data": {"entities": [{"event": "STARTED", "entity": {"id": "é-1"}}]},
}
COMPACT = json.dumps(DOCUMENT, separators=(",", ":"), ensure_ascii=False).encode()


def codes(findings: list[Finding]) -> list[str]:
    return [finding.code for finding in findings]


def explain(received_body: bytes, signed_body: bytes, secret: str = SECRET) -> list[Finding]:
    findings = explain_mismatch(received_body, hubsig.sign(signed_body, secret), [SECRET])
    expected = hubsig.sign(received_body, SECRET)[5:]
    text = " ".join(finding.message for finding in findings)
    assert expected not in text
    assert hubsig.sign(signed_body, secret)[5:] not in text
    assert SECRET not in text
    return findings


def test_trailing_newline_added_after_signing() -> None:
    assert "trailing_newline" in codes(explain(COMPACT + b"\n", COMPACT))
    assert "trailing_newline" in codes(explain(COMPACT + b"\r\n", COMPACT))


def test_trailing_newline_lost() -> None:
    assert "missing_newline" in codes(explain(COMPACT, COMPACT + b"\n"))


def test_line_endings_converted() -> None:
    text = b'{\r\n "operationId": "op"\r\n}'
    assert "line_endings" in codes(explain(text, text.replace(b"\r\n", b"\n")))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"sort_keys": True, "separators": (",", ":")},
        {"indent": 2},
    ],
)
def test_json_re_serialized_after_signing(options: dict[str, object]) -> None:
    signed = json.dumps(DOCUMENT, ensure_ascii=False, **options).encode()  # type: ignore[arg-type]
    findings = explain(COMPACT, signed)
    assert "reserialized_json" in codes(findings)


def test_unicode_escaped_by_the_sender() -> None:
    escaped = json.dumps(DOCUMENT, separators=(",", ":"), ensure_ascii=True).encode()
    findings = explain(COMPACT, escaped)
    messages = " ".join(f.message for f in findings if f.code == "reserialized_json")
    assert "\\u-escaped" in messages


def test_whitespace_around_the_secret() -> None:
    with pytest.warns(hubsig.SecretWhitespaceWarning):
        header = hubsig.sign(COMPACT, SECRET + "\n")
    findings = explain_mismatch(COMPACT, header, [SECRET])
    assert "secret_whitespace" in codes(findings)
    findings = explain_mismatch(COMPACT, hubsig.sign(COMPACT, SECRET), [" " + SECRET])
    assert "secret_whitespace" in codes(findings)


def test_base64_digest_where_hex_was_expected() -> None:
    header = hubsig.sign(COMPACT, SECRET, encoding="base64")
    assert "base64_digest" in codes(explain_mismatch(COMPACT, header, [SECRET]))


def test_refused_header_is_reported_as_such() -> None:
    findings = explain_mismatch(COMPACT, "md5=abc", [SECRET])
    assert codes(findings)[:2] == ["body_length", "header"]


def test_wrong_secret_has_no_known_cause_and_says_what_was_tried() -> None:
    findings = explain(COMPACT, COMPACT, secret="another-secret")
    assert codes(findings) == ["body_length", "no_known_cause", "tried"]
    assert findings[0].message == f"the body is {len(COMPACT)} bytes"
    assert "1 key(s)" in findings[-1].message
