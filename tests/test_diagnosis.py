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


ASCII_DOCUMENT = {"operationId": "op", "data": {"entities": [{"event": "STARTED"}]}}


def test_an_ascii_body_reserialized_gets_one_finding_not_two() -> None:
    compact = json.dumps(ASCII_DOCUMENT, separators=(",", ":")).encode()
    spaced = json.dumps(ASCII_DOCUMENT).encode()
    findings = [f for f in explain(compact, spaced) if f.code == "reserialized_json"]
    assert len(findings) == 1
    assert "unicode" not in findings[0].message


@pytest.mark.parametrize("indent", [2, 4])
def test_indented_and_sorted_json_is_recognised(indent: int) -> None:
    compact = json.dumps(ASCII_DOCUMENT, separators=(",", ":")).encode()
    signed = json.dumps(ASCII_DOCUMENT, indent=indent, sort_keys=True).encode()
    messages = [f.message for f in explain(compact, signed) if f.code == "reserialized_json"]
    assert messages == [
        f"the signature matches the same JSON written indented by {indent}, sorted keys: the "
        "body was re-serialized after signing (verify the raw bytes)"
    ]


def test_a_pasted_header_line_is_recognised_and_then_checked() -> None:
    pasted = "X-Hub-Signature: " + hubsig.sign(COMPACT, SECRET)
    findings = explain_mismatch(COMPACT, pasted, [SECRET])
    assert "pasted_header_line" in codes(findings)
    assert "unprintable" not in " ".join(f.message for f in findings)
    tampered = explain_mismatch(COMPACT + b"\n", pasted, [SECRET])
    assert codes(tampered)[:3] == ["body_length", "pasted_header_line", "trailing_newline"]


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_a_bare_hex_digest_is_recognised(algorithm: str) -> None:
    digest = hubsig.sign(COMPACT + b"\n", SECRET, algorithm).split("=", 1)[1]
    findings = explain_mismatch(COMPACT, digest, [SECRET])
    assert [code for code in codes(findings) if code in ("bare_digest", "missing_newline")] == [
        "bare_digest",
        "missing_newline",
    ]
    assert f"'{algorithm}=<digest>'" in next(f.message for f in findings if f.code == "bare_digest")


def test_a_pasted_line_with_the_right_signature_says_it_matches_once_corrected() -> None:
    findings = explain_mismatch(
        COMPACT, "X-Hub-Signature: " + hubsig.sign(COMPACT, SECRET), [SECRET]
    )
    assert codes(findings) == ["body_length", "pasted_header_line", "matches_once_corrected"]


def test_trailing_spaces_and_a_newline_are_named_and_not_called_reserialized() -> None:
    found = codes(explain(COMPACT + b" \n", COMPACT))
    assert "trailing_whitespace" in found
    assert "reserialized_json" not in found
    assert "reserialized_json" not in codes(explain(COMPACT + b"\n", COMPACT))
