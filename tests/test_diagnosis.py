"""--explain: one test per diagnosis, and none of them ever shows a digest or a secret."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import hubsig
from hubsig.cli import main
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


SORTED_LAYOUTS = {
    "sort_keys=True": {},
    'sort_keys=True, separators=(",", ":")': {"separators": (",", ":")},
    "sort_keys=True, indent=2": {"indent": 2},
    "sort_keys=True, indent=4": {"indent": 4},
}


@pytest.mark.parametrize("call", SORTED_LAYOUTS)
def test_the_sender_signing_sorted_keys_is_named_by_its_call(call: str) -> None:
    compact = json.dumps(ASCII_DOCUMENT, separators=(",", ":")).encode()
    signed = json.dumps(ASCII_DOCUMENT, sort_keys=True, **SORTED_LAYOUTS[call]).encode()  # type: ignore[arg-type]
    messages = [f.message for f in explain(compact, signed) if f.code == "reserialized_json"]
    assert messages == [
        f"the signature matches json.dumps(body, {call}): the body was re-serialized after "
        "signing (verify the raw bytes)"
    ]


@pytest.mark.parametrize("call", SORTED_LAYOUTS)
@pytest.mark.parametrize("document", [ASCII_DOCUMENT, DOCUMENT], ids=["ascii", "unicode"])
def test_a_body_received_with_sorted_keys_is_put_back_in_the_senders_order(
    call: str, document: dict[str, object]
) -> None:
    """The new user's case: the sender signed its own key order, and the body arrived sorted
    (``json.dumps(..., sort_keys=True)`` somewhere on the way). Once blamed the secret."""
    signed = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    received = json.dumps(document, sort_keys=True, ensure_ascii=False, **SORTED_LAYOUTS[call])  # type: ignore[arg-type]
    findings = explain(received.encode(), signed)
    assert "no_known_cause" not in codes(findings)
    messages = [f.message for f in findings if f.code == "reserialized_json"]
    unicode = "" if document is ASCII_DOCUMENT else ", ensure_ascii=False"
    assert messages == [
        f"the body was re-serialized with json.dumps(body, {call}{unicode}) after signing: the "
        "signature matches the same JSON in the sender's key order, written as "
        f'json.dumps(body, separators=(",", ":"){unicode}) (verify the raw bytes)'
    ]


def test_sorted_keys_in_an_order_hubsig_cannot_rebuild_are_still_named() -> None:
    sender = b'{"zeta":1,"operationId":"op","data":{"entities":[]}}'
    received = json.dumps(json.loads(sender), sort_keys=True, indent=2).encode()
    findings = explain(received, sender)
    assert codes(findings) == ["body_length", "sorted_keys", "tried"]
    assert findings[1].message.startswith(
        "the body reads exactly as json.dumps(body, sort_keys=True, indent=2) writes it"
    )


def test_a_body_without_keys_to_sort_is_not_called_sorted() -> None:
    signed = b'[{"event":"STARTED"}]'
    assert codes(explain(signed, signed, secret="another-secret"))[1] == "no_known_cause"


def test_hubsig_verify_explain_names_the_sorting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = json.dumps(ASCII_DOCUMENT, separators=(",", ":")).encode()
    received = tmp_path / "received.json"
    received.write_bytes(json.dumps(ASCII_DOCUMENT, sort_keys=True, indent=2).encode())
    signature = hubsig.sign(signed, SECRET)
    argv = ["verify", str(received), "--signature", signature, "--secret", SECRET, "--explain"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "re-serialized with json.dumps(body, sort_keys=True, indent=2)" in out
    assert "check the secret" not in out


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


def test_the_troubleshooting_page_shows_what_verify_explain_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's example, run: ``examples/delivery.json`` signed, then sorted and indented."""
    root = Path(__file__).parent.parent
    page = (root / "docs" / "guide" / "troubleshooting.md").read_text(encoding="utf-8")
    command = re.search(r"```sh\nexport HUBSIG_SECRET=(\S+)\n(hubsig verify .*?)\n```", page)
    printed = re.search(r"```text\n(.*?)```", page, re.DOTALL)
    assert command is not None
    assert printed is not None
    sent = (root / "examples" / "delivery.json").read_bytes()
    received = json.dumps(json.loads(sent), sort_keys=True, indent=2).encode()
    (tmp_path / "received.json").write_bytes(received)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUBSIG_SECRET", command.group(1))
    assert main(shlex.split(command.group(2))[1:]) == 1
    assert capsys.readouterr().out == printed.group(1)
