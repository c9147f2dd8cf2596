"""``parse_events``'s fast path when ``msgspec`` is installed (``hubsig[fast]``).

msgspec decodes the body straight into typed structs, checking every field's
type as it goes, and the structs become the same public models. Anything it
does not accept, and anything the standard parser judges by a rule of its own
(escaped surrogates, very long integers), goes to the standard path, which
then gives the one answer and error message hubsig has always given; a
differential test holds both paths to identical results.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from hubsig._models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType

__all__ = ["fast_parse"]


class _Entity(msgspec.Struct):
    id: str | None = None
    mediaType: str | None = None  # noqa: N815 (the wire's names)
    interactionSubtype: str | None = None  # noqa: N815
    selfUri: str | None = None  # noqa: N815


class _Item(msgspec.Struct):
    event: str | None = None
    entity: _Entity | None = None


class _Data(msgspec.Struct):
    entities: list[_Item] | None = None


class _Document(msgspec.Struct):
    operationId: str | None = None  # noqa: N815
    data: _Data | None = None


_DECODER = msgspec.json.Decoder(_Document)
_EVENT_TYPES: dict[Any, Any] = {member.value: member for member in EventType}
_MEDIA_TYPES: dict[Any, Any] = {member.value: member for member in MediaType}
_SUBTYPES: dict[Any, Any] = {member.value: member for member in InteractionSubtype}
# The standard parser's own rules decide two things: escaped surrogates, and integers past
# the interpreter's digit limit (4,300 by default), refused even in fields hubsig ignores.
_DIGIT_LIMIT = sys.get_int_max_str_digits() or 0
_DIGITS_MARKED = bytes.maketrans(b"0123456789", b"\x00" * 10)
_LONG_RUN = b"\x00" * (_DIGIT_LIMIT + 1)


def _for_the_standard_path(body: bytes) -> bool:
    if b"\\ud" in body or b"\\uD" in body:
        return True
    return 0 < _DIGIT_LIMIT < len(body) and _LONG_RUN in body.translate(_DIGITS_MARKED)


def fast_parse(body: bytes | bytearray | memoryview) -> EventsPayload | None:
    """The payload, or ``None`` when the standard path must decide (not strict mode)."""
    raw = bytes(body)
    if _for_the_standard_path(raw):
        return None
    try:
        raw.decode()  # msgspec does not check the UTF-8 of what it skips; the standard path does
        document = _DECODER.decode(raw)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # bad UTF-8 is a ValueError
        return None
    make = tuple.__new__
    events: list[Event] = []
    append = events.append
    data = document.data
    for item in (data.entities or ()) if data is not None else ():
        kind = item.event
        kind = _EVENT_TYPES.get(kind, kind)
        fields = item.entity
        if fields is None:
            append(make(Event, (kind, None)))
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
        append(make(Event, (kind, entity)))
    return EventsPayload(document.operationId, tuple(events))
