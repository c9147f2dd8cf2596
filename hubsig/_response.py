"""The receiver's answer, the seed's ``EventsResponse``.

``{"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": …}]}}``
acknowledges a delivery; the same shape with a non-zero code reports a
refusal or a failure, so senders and humans read one format.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hubsig._json_body import parse_json_object
from hubsig.errors import MalformedPayload

__all__ = ["EventsResponse", "events_json", "events_response", "parse_events_response"]

_json_string = json.encoder.encode_basestring
"""A string as ``json.dumps(..., ensure_ascii=False)`` writes it (the C encoder's own)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsResponse:
    """A response body: the ids handled, a status code (0 is success) and a message.

    Keyword-only, in the order ``events_response(ids, code=, message=)`` takes them.
    """

    ids: tuple[str, ...] = ()
    code: int = 0
    message: str = "OK"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": {"code": self.code, "message": self.message},
            "data": {"ids": [{"id": entity_id} for entity_id in self.ids]},
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON for the response body."""
        return events_json(self.ids, self.code, self.message)


def events_json(
    ids: tuple[str, ...], code: int = 0, message: str = "OK", *, plain_ids: bool = False
) -> bytes:
    """``EventsResponse(ids=ids, code=code, message=message).to_json()`` without the object.

    Every 200 writes one, so it is assembled from the ids' JSON strings rather
    than through ``json.dumps`` (the same bytes: a property test holds it to that).
    ``plain_ids`` says the caller knows that no id needs escaping (``ParsedEvents``).
    """
    if code.__class__ is int:
        try:
            listed = _plain_ids(ids) if plain_ids else _listed_ids(ids)
            text = _json_string(message)
        except TypeError:  # an id or message that is no string: json decides how it looks
            pass
        else:
            answer = f'{{"status":{{"code":{code},"message":{text}}},"data":{{"ids":[{listed}]}}}}'
            return answer.encode()
    document = EventsResponse(ids=ids, code=code, message=message).to_dict()
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _listed_ids(ids: tuple[str, ...]) -> str:
    """The ids as the JSON array's items, ``{"id":"a"},{"id":"b"}``: most ids need no escape
    (three scans of them say so), and are written as they are; others go through the
    encoder. ``TypeError`` for an id that is no string."""
    if not ids:
        return ""
    joined = "".join(ids)
    if joined.isprintable() and '"' not in joined and "\\" not in joined:
        return _plain_ids(ids)
    return '{"id":' + '},{"id":'.join(map(_json_string, ids)) + "}"


def _plain_ids(ids: tuple[str, ...]) -> str:
    """``_listed_ids`` for ids known to need no escape."""
    return '{"id":"' + '"},{"id":"'.join(ids) + '"}' if ids else ""


def events_response(
    ids: Iterable[str] = (), *, code: int = 0, message: str = "OK"
) -> EventsResponse:
    """Build an ``EventsResponse``; call ``.to_json()`` for the body bytes."""
    return EventsResponse(ids=tuple(ids), code=code, message=message)


def parse_events_response(body: bytes | bytearray | memoryview) -> EventsResponse:
    """Read a receiver's answer, as a sender or a test sees it.

    Raises ``MalformedPayload`` when the body is not an ``EventsResponse``.
    """
    document = parse_json_object(body)
    status = document.get("status")
    if not isinstance(status, dict):
        raise MalformedPayload("status must be an object")
    code, message = status.get("code"), status.get("message")
    if not isinstance(code, int) or isinstance(code, bool):
        raise MalformedPayload("status.code must be an integer")
    if message is not None and not isinstance(message, str):
        raise MalformedPayload("status.message must be a string")
    data = document.get("data")
    if data is None:
        return EventsResponse(code=code, message=message or "")
    if not isinstance(data, dict) or not isinstance(data.get("ids", []), list):
        raise MalformedPayload("data.ids must be an array")
    ids: list[str] = []
    for position, item in enumerate(data.get("ids", [])):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise MalformedPayload(f"data.ids[{position}] must be an object with a string id")
        ids.append(item["id"])
    return EventsResponse(ids=tuple(ids), code=code, message=message or "")
