"""Decoding a body as one JSON object, with every failure a ``MalformedPayload``.

Non-UTF-8 bytes, invalid JSON, ``NaN``/``Infinity``, integers past the
interpreter's digit limit, escaped lone surrogates (text no UTF-8 can
carry) and nesting deep enough to exhaust the parser are
refused with a message saying what was wrong, never a bare ``ValueError``
or ``RecursionError``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hubsig.errors import MalformedPayload

__all__ = ["json_type", "parse_json_object", "shown"]


def parse_json_object(
    body: bytes | bytearray | memoryview, *, refuse_duplicate_keys: bool = False
) -> dict[str, Any]:
    """Decode strict UTF-8 JSON whose top level is an object.

    A key repeated in one object keeps its last value, as JSON parsers
    commonly do; ``refuse_duplicate_keys`` refuses such a body instead
    (at some cost in speed), so no later parser can read it differently.
    """
    try:
        text = bytes(body).decode("utf-8") if not isinstance(body, bytes) else body.decode()
    except UnicodeDecodeError as error:
        raise MalformedPayload(
            f"the body is not UTF-8 (bad byte at offset {error.start})"
        ) from None
    try:
        document = (_STRICT_DECODER if refuse_duplicate_keys else _DECODER).decode(text)
    except json.JSONDecodeError as error:
        raise MalformedPayload(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except _DuplicateKeyError as error:
        raise MalformedPayload(
            f"the body repeats the key {shown(error.key)} in one object"
        ) from None
    except RecursionError:
        raise MalformedPayload("the body's JSON is nested too deeply") from None
    except ValueError as error:
        # NaN/Infinity, or an integer past the interpreter's digit limit; the latter's own
        # message advises a Python call, which means nothing to the sender.
        reason = str(error)
        if "integer string conversion" in reason:
            limit = sys.get_int_max_str_digits()
            reason = f"an integer has more than {limit} digits"
        raise MalformedPayload(f"the body's JSON has an unsupported number: {reason}") from None
    if type(document) is not dict:
        raise MalformedPayload(f"the body must be a JSON object, not {json_type(document)}")
    if "\\" in text and ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(document):
        raise MalformedPayload("the body's JSON escapes a lone surrogate (\\ud800-\\udfff)")
    return document


def _has_lone_surrogate(document: dict[str, Any]) -> bool:
    """Whether a string decoded from a ``\\ud800``-style escape is half of a pair.

    Such text cannot be written as UTF-8, so a response or a log line that
    echoes it would fail on every retry; only bodies that escape a surrogate
    at all are checked, so ordinary bodies pay for one substring search.
    """
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def shown(value: str, limit: int = 40) -> str:
    """A sender's string, quoted and cut short, fit for an error message."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# Built once: json.loads with any keyword builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_STRICT_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys
)
