"""Helpers for testing a receiver without the real sender: realistic payloads, signed requests.

``make_events`` builds an ``EventsPayload`` like the Genesys sender's (fresh
UUIDs, a ``selfUri``), every field overridable; ``signed_request`` turns a
payload or raw body into the exact bytes and headers a sender would post.
The pytest plugin (``hubsig.pytest_plugin``) wraps these as fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hubsig._algorithms import DigestEncoding
from hubsig._models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType
from hubsig._scheme import Scheme, scheme_with
from hubsig._secrets import Secret
from hubsig._trace import TraceContext
from hubsig._verifier import sign

__all__ = ["SignedRequest", "make_entity", "make_event", "make_events", "signed_request"]

NEXUS_URL = "https://nexus.example/nexus/v3"


def make_entity(
    *,
    id: str | None = None,
    media_type: MediaType | str | None = MediaType.CHAT,
    interaction_subtype: InteractionSubtype | str | None = InteractionSubtype.INBOUND_NEW,
    self_uri: str | None = None,
) -> Entity:
    """An entity with a fresh UUID and the ``selfUri`` the sender would give it."""
    entity_id = id if id is not None else str(uuid.uuid4())
    media = media_type.value if isinstance(media_type, MediaType) else media_type
    if self_uri is None:
        self_uri = f"{NEXUS_URL}/{media or 'chat'}/sessions/{entity_id}"
    return Entity(entity_id, media_type, interaction_subtype, self_uri)


def make_event(
    event_type: EventType | str | None = EventType.STARTED,
    entity: Entity | None = None,
    **fields: str,
) -> Event:
    """An event; without ``entity``, ``fields`` (``id=``, ``media_type=``, …) make one."""
    return Event(event_type, entity if entity is not None else make_entity(**fields))


def make_events(
    count: int = 1,
    *,
    operation_id: str | None = None,
    event_type: EventType | str | None = EventType.STARTED,
    media_type: MediaType | str | None = MediaType.CHAT,
    interaction_subtype: InteractionSubtype | str | None = InteractionSubtype.INBOUND_NEW,
    events: Iterable[Event] | None = None,
) -> EventsPayload:
    """A realistic payload of ``count`` events (or exactly ``events``), fresh operation id."""
    if events is None:
        events = (
            Event(
                event_type,
                make_entity(media_type=media_type, interaction_subtype=interaction_subtype),
            )
            for _ in range(count)
        )
    return EventsPayload(operation_id or str(uuid.uuid4()), tuple(events))


@dataclass(frozen=True)
class SignedRequest:
    """What a sender posts: the raw body and its headers (signature, trace, content type)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""


def signed_request(
    payload: EventsPayload | bytes,
    secret: Secret,
    *,
    algorithm: str | None = None,
    encoding: DigestEncoding | None = None,
    header_name: str | None = None,
    scheme: Scheme | None = None,
    trace_id: str | None = None,
    with_trace: bool = True,
    tamper: bool = False,
    extra_headers: Mapping[str, str] | None = None,
) -> SignedRequest:
    """Sign ``payload`` as the sender does, with an ``X-B3-TraceId`` (fresh unless given;
    none with ``with_trace=False``). ``tamper=True`` signs other bytes than those sent.

    The header, hash and encoding are ``scheme``'s (``WEBSUB`` by default,
    signing with its first algorithm, sha1), each replaceable on its own.
    """
    body = payload.to_json() if isinstance(payload, EventsPayload) else payload
    signed_bytes = body + b" " if tamper else body
    trace = trace_id or TraceContext.new().trace_id
    chosen = scheme_with(scheme, header_name, algorithm, encoding)
    headers = {
        "Content-Type": "application/json",
        chosen.header: sign(
            signed_bytes, secret, algorithm or chosen.algorithms[0], encoding=chosen.encoding
        ),
    }
    if with_trace:
        headers["X-B3-TraceId"] = trace
    headers.update(extra_headers or {})
    return SignedRequest(body, headers, trace if with_trace else "")
