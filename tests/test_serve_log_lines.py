"""``hubsig serve``'s log and ``--out`` file: one line per event, whatever a signed body's
strings hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubsig.cli.event_log import read_event_log
from hubsig.cli.serving import log_field
from tests.test_send_serve import send, serving

FORGED = "\n2026-12-03 09:00:00,000 INFO trace=- hubsig.serve: accepted FORGED"
HOSTILE = [
    "line" + FORGED,
    "carriage\rreturn",
    "colour\x1b[31mred\x1b]0;title\x07",
    "separator\u2028and\u2029paragraph",
    "c1\x85\x9bcontrol",
    'quote" id=forged',
]


@pytest.mark.slow
def test_a_signed_body_cannot_forge_log_lines(tmp_path: Path) -> None:
    entities = [
        {
            "event": text,
            "entity": {"id": text, "mediaType": text, "interactionSubtype": text},
        }
        for text in HOSTILE
    ]
    body = tmp_path / "hostile.json"
    body.write_text(json.dumps({"operationId": FORGED, "data": {"entities": entities}}))
    with serving(tmp_path) as (url, out, _):
        sent = send(url, "--body", str(body))
        assert sent.returncode == 0, sent.stdout + sent.stderr
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    lines = log.split("\n")  # every line break a terminal honours, not only \n
    accepted = [line for line in lines if " hubsig.serve: accepted " in line]
    assert len(accepted) == len(HOSTILE)  # one line per event, none forged
    assert "accepted FORGED" not in [line.split(": ", 1)[-1] for line in lines]
    for control in "\r\x1b\x07\x85\x9b\u2028\u2029":
        assert control not in log
    for line, text in zip(accepted, HOSTILE, strict=True):
        assert f"id={log_field(text)} " in line
    assert [record["entity"]["id"] for record in read_event_log(out)] == HOSTILE  # kept exact
    exported = out.read_text(encoding="utf-8")
    assert len(exported.splitlines()) == len(HOSTILE)  # even for str.splitlines
    assert not any(control in exported for control in "\r\x1b\x85\x9b\u2028\u2029")


def test_log_field_escapes_controls_and_quotes_what_could_split_a_field() -> None:
    assert log_field("8f2c-41") == "8f2c-41"
    assert log_field("ключ") == "ключ"  # printable non-ASCII stays readable
    assert log_field(None) == "None"
    assert log_field("") == '""'
    assert log_field("a\nb") == "a\\x0ab"
    assert log_field("\u2028") == "\\u2028"
    assert log_field("a b") == '"a b"'
    assert log_field('x" id=y') == '"x\\" id=y"'
    assert log_field("back\\slash") == "back\\\\slash"
