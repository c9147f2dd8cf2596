"""Realistic deliveries of an exact size: EventsPayload JSON, padded with trailing whitespace."""

from __future__ import annotations

import json
import uuid

SECRET = b"It's a Secret to Everybody"


def events_body(size: int) -> bytes:
    """Compact EventsPayload JSON of exactly ``size`` bytes (trailing spaces pad it)."""
    entity_json = len(_entities(1)[0].encode()) + 1
    count = max(0, (size - 64) // entity_json)
    while True:
        body = _document(count)
        if len(body) <= size:
            return body + b" " * (size - len(body))
        count -= 1


def _entities(count: int) -> list[str]:
    items = []
    for index in range(count):
        entity_id = str(uuid.UUID(int=index + 1))
        kind = "STARTED" if index % 2 == 0 else "FINISHED"
        media = "chat" if index % 3 else "email"
        item = {
            "event": kind,
            "entity": {
                "id": entity_id,
                "mediaType": media,
                "interactionSubtype": "InboundNew",
                "selfUri": f"https://nexus.example/nexus/v3/{media}/sessions/{entity_id}",
            },
        }
        items.append(json.dumps(item, separators=(",", ":")))
    return items


def _document(count: int) -> bytes:
    operation = '"operationId":"f6c49d91-926b-4473-b2f3-8d8fd295c968"'
    return ("{" + operation + ',"data":{"entities":[' + ",".join(_entities(count)) + "]}}").encode()
