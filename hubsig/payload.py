"""Parsing a verified body into ``EventsPayload``.

Call this only after the signature matched. Any body, however hostile,
either parses or raises ``MalformedPayload`` with a message naming where it
went wrong (``data.entities[3].entity.id``): never a bare ``KeyError``,
``UnicodeDecodeError`` or ``RecursionError``.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, TypeVar

from hubsig.errors import MalformedPayload
from hubsig.models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType

__all__ = ["parse_events", "parse_json_object"]

_EnumT = TypeVar("_EnumT", bound=Enum)


def parse_events(body: bytes | bytearray | memoryview, *, strict: bool = False) -> EventsPayload:
    """Parse the raw body into typed models.

    Missing fields become ``None``; values hubsig does not know are kept as
    strings. With ``strict=True``, unknown values and a missing operation id
    or entity id are refused too. Raises ``MalformedPayload`` otherwise.
    """
    document = parse_json_object(body)
    operation_id = _optional_str(document, "operationId", "")
    if strict and operation_id is None:
        raise MalformedPayload("operationId is required")
    data = _optional_object(document, "data", "")
    entities = _optional_array(data, "entities", "data.") if data is not None else None
    events = tuple(
        _parse_event(item, f"data.entities[{position}]", strict)
        for position, item in enumerate(entities or ())
    )
    return EventsPayload(operation_id, events)


def parse_json_object(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode strict UTF-8 JSON whose top level is an object.

    Refused, as ``MalformedPayload``: non-UTF-8 bytes (JSON's other encodings
    included), invalid JSON, ``NaN``/``Infinity``, duplicate keys in an
    object (two parsers could read them differently), integers too long to
    convert, and nesting deep enough to exhaust the parser.
    """
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedPayload(
            f"the body is not UTF-8 (bad byte at offset {error.start})"
        ) from None
    try:
        document = json.loads(
            text, object_pairs_hook=_refuse_duplicate_keys, parse_constant=_refuse_constant
        )
    except json.JSONDecodeError as error:
        raise MalformedPayload(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except _DuplicateKeyError as error:
        raise MalformedPayload(
            f"the body repeats the key {_shown(error.key)} in one object"
        ) from None
    except RecursionError:
        raise MalformedPayload("the body's JSON is nested too deeply") from None
    except ValueError as error:
        # NaN/Infinity, or an integer past the interpreter's digit limit.
        raise MalformedPayload(f"the body's JSON has an unsupported number: {error}") from None
    if not isinstance(document, dict):
        raise MalformedPayload(f"the body must be a JSON object, not {_json_type(document)}")
    return document


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


def _parse_event(item: Any, path: str, strict: bool) -> Event:
    if not isinstance(item, dict):
        raise MalformedPayload(f"{path} must be an object, not {_json_type(item)}")
    event_type = _optional_enum(item, "event", path + ".", EventType, strict)
    fields = _optional_object(item, "entity", path + ".")
    if fields is None:
        if strict:
            raise MalformedPayload(f"{path}.entity is required")
        return Event(event_type, None)
    prefix = path + ".entity."
    entity = Entity(
        id=_optional_str(fields, "id", prefix),
        media_type=_optional_enum(fields, "mediaType", prefix, MediaType, strict),
        interaction_subtype=_optional_enum(
            fields, "interactionSubtype", prefix, InteractionSubtype, strict
        ),
        self_uri=_optional_str(fields, "selfUri", prefix),
    )
    if strict and entity.id is None:
        raise MalformedPayload(f"{prefix}id is required")
    return Event(event_type, entity)


def _optional_str(parent: dict[str, Any], name: str, prefix: str) -> str | None:
    value = parent.get(name)
    if value is None or isinstance(value, str):
        return value
    raise MalformedPayload(f"{prefix}{name} must be a string, not {_json_type(value)}")


def _optional_object(parent: dict[str, Any], name: str, prefix: str) -> dict[str, Any] | None:
    value = parent.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise MalformedPayload(f"{prefix}{name} must be an object, not {_json_type(value)}")


def _optional_array(parent: dict[str, Any], name: str, prefix: str) -> list[Any] | None:
    value = parent.get(name)
    if value is None or isinstance(value, list):
        return value
    raise MalformedPayload(f"{prefix}{name} must be an array, not {_json_type(value)}")


def _optional_enum(
    parent: dict[str, Any], name: str, prefix: str, kind: type[_EnumT], strict: bool
) -> _EnumT | str | None:
    value = _optional_str(parent, name, prefix)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        if strict:
            raise MalformedPayload(f"{prefix}{name} has an unknown value {_shown(value)}") from None
        return value


def _json_type(value: Any) -> str:
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


def _shown(value: str, limit: int = 40) -> str:
    """A sender's string, quoted and cut short, fit for an error message."""
    return repr(value if len(value) <= limit else value[:limit] + "…")
