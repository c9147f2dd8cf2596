"""Parsing a verified body into ``EventsPayload``.

Call this only after the signature matched. Any body, however hostile,
either parses or raises ``MalformedPayload`` with a message naming where it
went wrong (``data.entities[3].entity.id``). Parsing runs on every delivery,
so a well-formed body takes a fast path that only checks and builds; a body
that fails it is walked again by ``_explain`` to say exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from hubsig._json_body import json_type, parse_json_object, shown
from hubsig._models import (
    Entity,
    Event,
    EventsPayload,
    EventType,
    InteractionSubtype,
    MediaType,
)
from hubsig._parsed import ParsedEvents
from hubsig.errors import MalformedPayload

__all__ = ["parse_events", "parse_json_object"]

_EnumT = TypeVar("_EnumT", bound=Enum)

_Body = bytes | bytearray | memoryview
_FastParsers = tuple[
    Callable[[_Body], "EventsPayload | None"], Callable[[_Body], "ParsedEvents | None"]
]
_fast: list[_FastParsers | None] = []  # loaded on first use, so `import hubsig` stays light


def _fast_parsers() -> _FastParsers | None:
    """``msgspec``'s typed decoding when ``hubsig[fast]`` is installed, else ``None``."""
    if not _fast:
        try:
            from hubsig._fast_payload import fast_parse, fast_parsed
        except ImportError:  # pragma: no cover - the standard path alone
            _fast.append(None)
        else:
            _fast.append((fast_parse, fast_parsed))
    return _fast[0]


_EVENT_TYPES: dict[Any, EventType] = {member.value: member for member in EventType}
_MEDIA_TYPES: dict[Any, MediaType] = {member.value: member for member in MediaType}
_SUBTYPES: dict[Any, InteractionSubtype] = {m.value: m for m in InteractionSubtype}


def parse_events(body: bytes | bytearray | memoryview, *, strict: bool = False) -> EventsPayload:
    """Parse the raw body into typed models.

    Missing fields become ``None``; values hubsig does not know are kept as
    strings; a key repeated in one object keeps its last value. With
    ``strict=True``, unknown values, a missing operation id or entity id, and
    repeated keys are refused too. Raises ``MalformedPayload`` otherwise.
    """
    fast = _fast[0] if _fast else _fast_parsers()
    if not strict and fast is not None:
        payload = fast[0](body)
        if payload is not None:
            return payload
    return _standard(body, strict)


def parse(
    body: bytes | bytearray | memoryview, *, strict: bool = False, records: bool = False
) -> ParsedEvents:
    """``parse_events`` as the flow takes it: the same checks and errors, and the records
    built only when read (see ``hubsig._parsed``); ``records`` builds them at once, for a
    flow that hands every delivery to its handler (no store: nothing is a repeat)."""
    if records:
        return ParsedEvents.of(parse_events(body, strict=strict))
    fast = _fast[0] if _fast else _fast_parsers()
    if not strict and fast is not None:
        parsed = fast[1](body)
        if parsed is not None:
            return parsed
    return ParsedEvents.of(_standard(body, strict))


def _standard(body: bytes | bytearray | memoryview, strict: bool) -> EventsPayload:
    """The standard library's parse, which also says what is wrong with a body."""
    document = parse_json_object(body, refuse_duplicate_keys=strict)
    payload = _build(document, strict)
    if payload is None:
        _explain(document, strict)
        raise MalformedPayload("the body is not an events payload")  # pragma: no cover
    return payload


def _build(
    document: dict[str, Any],
    strict: bool,
    event_types: dict[Any, EventType] = _EVENT_TYPES,
    media_types: dict[Any, MediaType] = _MEDIA_TYPES,
    subtypes: dict[Any, InteractionSubtype] = _SUBTYPES,
) -> EventsPayload | None:
    """The payload, or ``None`` if anything is off (``_explain`` then says what).

    Written for speed: every delivery goes through here. Tables are bound to
    locals, and the records are made with ``tuple.__new__``, which skips the
    generated ``__new__``'s argument handling.
    """
    make = tuple.__new__
    operation_id = document.get("operationId")
    if operation_id is None:
        if strict:
            return None
    elif operation_id.__class__ is not str:
        return None
    data = document.get("data")
    entities: Any = ()
    if data is not None:
        if data.__class__ is not dict:
            return None
        entities = data.get("entities")
        if entities is None:
            entities = ()
        elif entities.__class__ is not list:
            return None
    events: list[Event] = []
    append = events.append
    for item in entities:
        if item.__class__ is not dict:
            return None
        kind = item.get("event")
        # Type first (the common case, a string, decides in one test); the
        # tables map None to None, so no separate check is needed for it.
        if kind.__class__ is not str and kind is not None:
            return None
        kind = event_types.get(kind, kind)
        fields = item.get("entity")
        if fields is None:
            if strict:
                return None
            append(make(Event, (kind, None)))
            continue
        if fields.__class__ is not dict:
            return None
        entity_id = fields.get("id")
        media_type = fields.get("mediaType")
        subtype = fields.get("interactionSubtype")
        self_uri = fields.get("selfUri")
        if (
            (entity_id.__class__ is not str and entity_id is not None)
            or (self_uri.__class__ is not str and self_uri is not None)
            or (media_type.__class__ is not str and media_type is not None)
            or (subtype.__class__ is not str and subtype is not None)
        ):
            return None
        media_type = media_types.get(media_type, media_type)
        subtype = subtypes.get(subtype, subtype)
        if strict and (
            entity_id is None
            or kind.__class__ is str
            or media_type.__class__ is str
            or subtype.__class__ is str
        ):
            return None
        append(make(Event, (kind, make(Entity, (entity_id, media_type, subtype, self_uri)))))
    return EventsPayload(operation_id, tuple(events))


def _explain(document: dict[str, Any], strict: bool) -> EventsPayload:
    """Walk the document with paths, raising ``MalformedPayload`` where it first goes wrong."""
    operation_id = _optional_str(document, "operationId", "")
    if strict and operation_id is None:
        raise MalformedPayload("operationId is required")
    data = _optional_object(document, "data", "")
    entities = _optional_array(data, "entities", "data.") if data is not None else None
    events = tuple(
        _explain_event(item, f"data.entities[{position}]", strict)
        for position, item in enumerate(entities or ())
    )
    return EventsPayload(operation_id, events)


def _explain_event(item: Any, path: str, strict: bool) -> Event:
    if not isinstance(item, dict):
        raise MalformedPayload(f"{path} must be an object, not {json_type(item)}")
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
    raise MalformedPayload(f"{prefix}{name} must be a string, not {json_type(value)}")


def _optional_object(parent: dict[str, Any], name: str, prefix: str) -> dict[str, Any] | None:
    value = parent.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise MalformedPayload(f"{prefix}{name} must be an object, not {json_type(value)}")


def _optional_array(parent: dict[str, Any], name: str, prefix: str) -> list[Any] | None:
    value = parent.get(name)
    if value is None or isinstance(value, list):
        return value
    raise MalformedPayload(f"{prefix}{name} must be an array, not {json_type(value)}")


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
            raise MalformedPayload(f"{prefix}{name} has an unknown value {shown(value)}") from None
        return value
