"""A verified body's events as the flow needs them: keys and ids first, records on demand.

Every delivery is claimed by its events' keys before anything else happens,
and a repeat (every event already processed) is answered with its entity
ids alone: no handler, sink or app sees it. So the typed records, which cost
more to build than decoding the body (36 ``NamedTuple``s for 18 events), are
built only when something will read them. The parser that can (msgspec's,
``hubsig[fast]``) hands over the events' kinds and ids and a way to build
the records; the standard parser builds the records at once, and the keys
and ids are read from them, as ``event_keys`` and ``entity_ids`` define.
"""

from __future__ import annotations

from collections.abc import Callable

from hubsig._dedupe import event_keys, holdable_keys
from hubsig._models import EventsPayload

__all__ = ["ParsedEvents"]


class ParsedEvents:
    """A delivery's events: ``count``, ``keys(body)``, ``entity_ids`` and the ``payload``.

    Made either from records already built (``of``), or from each event's
    kind and entity id (every event having both) and a ``build`` that makes
    the records, called at most once.
    """

    __slots__ = ("_build", "_ids", "_kinds", "_payload", "count", "plain_ids")

    def __init__(
        self,
        kinds: list[str],
        entity_ids: tuple[str, ...],
        build: Callable[[], EventsPayload],
        *,
        plain_ids: bool = False,
    ) -> None:
        self._kinds: list[str] | None = kinds
        self._ids: tuple[str, ...] | None = entity_ids
        self.plain_ids = plain_ids
        """True when the parser knows no id needs escaping in JSON (``events_json``)."""
        self.count = len(entity_ids)
        self._build: Callable[[], EventsPayload] | None = build
        self._payload: EventsPayload | None = None

    @classmethod
    def of(cls, payload: EventsPayload) -> ParsedEvents:
        """The events of records already built."""
        parsed = cls.__new__(cls)
        parsed._kinds = None
        parsed._build = None
        parsed._payload = payload
        parsed._ids = None  # read from the records if asked for
        parsed.plain_ids = False
        parsed.count = len(payload.events)
        return parsed

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """Every entity id, in order: what a 200 acknowledges (``EventsPayload.entity_ids``)."""
        ids = self._ids
        if ids is None:
            ids = self._ids = self.payload.entity_ids
        return ids

    @property
    def payload(self) -> EventsPayload:
        """The typed records, built on first use."""
        payload = self._payload
        if payload is None:
            build = self._build
            assert build is not None  # one of the two is always set
            payload = self._payload = build()
            self._build = None
        return payload

    def keys(self, body: bytes) -> list[str]:
        """Each event's dedupe key, in order: ``event_keys(self.payload, body)``, the same
        keys (a property test holds the two to it), without the records when it can."""
        kinds, ids = self._kinds, self._ids
        if kinds is None or ids is None:
            return event_keys(self.payload, body)
        return holdable_keys([f"{kind}:{key}" for kind, key in zip(kinds, ids, strict=True)])
