"""Untrusted text in hubsig's log lines: one event is always one line."""

from __future__ import annotations

import logging
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig._log_text import escaped, hubsig_logger


@given(st.text())
def test_escaped_text_has_no_control_character_and_reads_back(text: str) -> None:
    out = escaped(text)
    assert not [c for c in out if unicodedata.category(c) == "Cc" or c in "\u2028\u2029"]
    if text.isprintable() and "\\" not in text:
        assert out == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "a\\x0ab"),
        ("\r\x1b[31m", "\\x0d\\x1b[31m"),
        ("\u2028", "\\u2028"),
        ("\\x0a", "\\\\x0a"),  # a literal backslash cannot pose as an escape
        ("événement", "événement"),
    ],
)
def test_escaped_writes_control_characters_as_escapes(text: str, shown: str) -> None:
    assert escaped(text) == shown


def test_every_record_of_the_hubsig_logger_has_its_string_arguments_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A path or id quoted from a request cannot forge a second log line."""
    logger = hubsig_logger("hubsig")
    with caplog.at_level(logging.INFO, logger="hubsig"):
        logger.info("refused path=%s id=%s", "/hook\nFAKE refused", 7)
    [record] = caplog.records
    assert record.getMessage() == "refused path=/hook\\x0aFAKE refused id=7"
