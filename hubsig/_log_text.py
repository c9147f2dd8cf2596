"""Untrusted text made safe to write into a log line.

A request can carry any character in a header, a path or a signed body's
strings; written raw, ``\\n`` and ``\\r`` forge whole log lines and ``\\x1b``
drives the reader's terminal. ``escaped`` writes every control character as
a Python-style escape, so one logged event is always one line.
"""

from __future__ import annotations

import logging
import re

__all__ = ["EscapingFilter", "escaped", "hubsig_logger"]

_CONTROL = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with control characters (C0, DEL, C1, U+2028/9) escaped and ``\\`` doubled.

    Printable text, non-ASCII letters included, is kept as it is."""
    return _CONTROL.sub(_escape, text) if _CONTROL.search(text) else text


class EscapingFilter(logging.Filter):
    """Escapes the string arguments of every record a hubsig logger makes.

    hubsig's messages are constants with ``%s`` placeholders; the arguments
    are where request data (paths, ids, trace ids, reasons) enters a line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(escaped(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, dict):
            record.args = {k: escaped(v) if isinstance(v, str) else v for k, v in args.items()}
        return True


_FILTER = EscapingFilter()


def hubsig_logger(name: str) -> logging.Logger:
    """The logger ``name`` with the escaping filter on it (added once)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
