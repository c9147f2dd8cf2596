"""``parse_events``'s fast path when ``msgspec`` is installed (``hubsig[fast]``).

msgspec decodes the body straight into typed structs, checking every field's
type and every known enum value as it goes; the records are then built in C
(``map`` over ``attrgetter`` and ``tuple.__new__``), with no Python code run
per event. Anything it does not accept, and anything the standard parser
judges by a rule of its own (escaped surrogates, very long integers), goes
to the standard path, which gives the one answer and error message hubsig
has always given; a differential test holds both paths to identical results.
``fast_parsed`` is the flow's form: the events' kinds and ids at once, the
records only when something reads them (``hubsig._parsed``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from functools import partial
from operator import attrgetter
from typing import Any

import msgspec
from msgspec.structs import astuple

from hubsig._models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType
from hubsig._parsed import ParsedEvents

__all__ = ["fast_parse", "fast_parsed", "maybe_long_digit_run"]


class _Entity(msgspec.Struct, gc=False):
    id: str | None = None
    mediaType: MediaType | None = None  # noqa: N815 (the wire's names)
    interactionSubtype: InteractionSubtype | None = None  # noqa: N815
    selfUri: str | None = None  # noqa: N815


class _Item(msgspec.Struct, gc=False):
    event: EventType | None = None
    entity: _Entity | None = None


class _Data(msgspec.Struct, gc=False):
    entities: list[_Item] | None = None


class _Document(msgspec.Struct, gc=False):
    operationId: str | None = None  # noqa: N815
    data: _Data | None = None


class _OpenEntity(msgspec.Struct, gc=False):
    """An entity whose enum fields may hold values hubsig does not know (kept as strings)."""

    id: str | None = None
    mediaType: str | None = None  # noqa: N815
    interactionSubtype: str | None = None  # noqa: N815
    selfUri: str | None = None  # noqa: N815


class _OpenItem(msgspec.Struct, gc=False):
    event: str | None = None
    entity: _OpenEntity | None = None


class _OpenData(msgspec.Struct, gc=False):
    entities: list[_OpenItem] | None = None


class _OpenDocument(msgspec.Struct, gc=False):
    operationId: str | None = None  # noqa: N815
    data: _OpenData | None = None


_KNOWN = msgspec.json.Decoder(_Document)
_OPEN = msgspec.json.Decoder(_OpenDocument)
_entity_of = attrgetter("entity")
_event_of = attrgetter("event")
_id_of = attrgetter("id")
_value_of = attrgetter("_value_")  # a member's value without running Python code
_make_entity = partial(tuple.__new__, Entity)
_make_event = partial(tuple.__new__, Event)
_EVENT_TYPES: dict[Any, Any] = {member.value: member for member in EventType}
_MEDIA_TYPES: dict[Any, Any] = {member.value: member for member in MediaType}
_SUBTYPES: dict[Any, Any] = {member.value: member for member in InteractionSubtype}

_DIGIT_LIMIT = sys.get_int_max_str_digits() or 0
_DIGITS_MARKED = bytes.maketrans(b"0123456789", b"\x00" * 10)


def maybe_long_digit_run(body: bytes, limit: int = _DIGIT_LIMIT) -> bool:
    """Whether ``body`` may hold more than ``limit`` digits in a row (never a false "no").

    Looks at every ``limit // 10``-th byte only: a run of more than ``limit``
    digits covers ten consecutive sampled bytes, so a sample without ten
    digits in a row rules it out, at a 430th of the cost of reading every byte.
    """
    if limit <= 0 or len(body) <= limit:
        return False
    if limit < 10:
        return b"\x00" * (limit + 1) in body.translate(_DIGITS_MARKED)
    return b"\x00" * 10 in body[:: limit // 10].translate(_DIGITS_MARKED)


def _for_the_standard_path(body: bytes) -> bool:
    # The standard parser's own rules decide two things: escaped surrogates (one byte
    # search rules out any escape at all), and integers past the interpreter's digit
    # limit (4,300 by default), which it refuses even in fields hubsig ignores.
    if b"\\" in body and (b"\\ud" in body or b"\\uD" in body):
        return True
    return maybe_long_digit_run(body)


def fast_parse(body: bytes | bytearray | memoryview) -> EventsPayload | None:
    """The payload, or ``None`` when the standard path must decide (not strict mode)."""
    document = _decoded(body)
    if document is None or isinstance(document, EventsPayload):
        return document
    items = _items(document)
    if not items:
        return EventsPayload(document.operationId, ())
    fields = list(map(_entity_of, items))
    if None in fields:  # an event without an entity: rare enough for the general build
        return _with_unknown_values(document)
    return _records(document.operationId, map(_event_of, items), fields)


def fast_parsed(body: bytes | bytearray | memoryview) -> ParsedEvents | None:
    """``fast_parse`` for the flow: the kinds and ids now, the records when first read."""
    raw = bytes(body)
    document = _decoded(raw)
    if document is None:
        return None
    if isinstance(document, EventsPayload):
        return ParsedEvents.of(document)
    items = _items(document)
    operation_id = document.operationId
    if not items:
        return ParsedEvents.of(EventsPayload(operation_id, ()))
    fields = list(map(_entity_of, items))
    kinds = list(map(_event_of, items))
    if None in fields or None in kinds:
        return ParsedEvents.of(_with_unknown_values(document))
    ids = tuple(map(_id_of, fields))
    if None in ids:  # keyed by the operation id and the body's digest: the general way
        return ParsedEvents.of(_records(operation_id, kinds, fields))
    # JSON strings cannot hold a quote, a backslash or a control character unescaped, and
    # msgspec refuses one that does: in a body without a backslash, no id needs escaping.
    plain = b"\\" not in raw
    build = partial(_records, operation_id, kinds, fields)  # the kinds read once, not again
    return ParsedEvents(list(map(_value_of, kinds)), ids, build, plain_ids=plain)


def _decoded(body: bytes | bytearray | memoryview) -> _Document | EventsPayload | None:
    """The decoded document; the payload when it holds values hubsig does not know;
    ``None`` when the standard path must decide."""
    raw = bytes(body)
    if _for_the_standard_path(raw):
        return None
    try:
        raw.decode()  # msgspec does not check the UTF-8 of what it skips; the standard path does
        try:
            return _KNOWN.decode(raw)
        except msgspec.ValidationError:  # maybe a value hubsig does not know yet
            return _with_unknown_values(_OPEN.decode(raw))
    except (msgspec.MsgspecError, ValueError, RecursionError):  # bad UTF-8 is a ValueError
        return None


def _items(document: _Document) -> list[_Item] | None:
    data = document.data
    return data.entities if data is not None else None


def _records(
    operation_id: str | None, kinds: Iterable[EventType | None], fields: list[_Entity]
) -> EventsPayload:
    """The records of events that all have an entity, built in C."""
    entities = map(_make_entity, map(astuple, fields))  # _Entity's fields are Entity's, in order
    events = tuple(map(_make_event, zip(kinds, entities, strict=True)))
    return EventsPayload(operation_id, events)


def _with_unknown_values(document: _Document | _OpenDocument) -> EventsPayload:
    """The payload built one event at a time, mapping known values to their members."""
    make = tuple.__new__
    events: list[Event] = []
    data = document.data
    for item in (data.entities or ()) if data is not None else ():
        kind = item.event
        kind = _EVENT_TYPES.get(kind, kind)
        fields = item.entity
        if fields is None:
            events.append(make(Event, (kind, None)))
            continue
        media = fields.mediaType
        subtype = fields.interactionSubtype
        entity = make(
            Entity,
            (
                fields.id,
                _MEDIA_TYPES.get(media, media),
                _SUBTYPES.get(subtype, subtype),
                fields.selfUri,
            ),
        )
        events.append(make(Event, (kind, entity)))
    return EventsPayload(document.operationId, tuple(events))
