"""A verified delivery: what a handler, a sink or an app behind the middleware is given."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hubsig._dedupe import Claims
from hubsig._models import EventsPayload
from hubsig._trace import TraceContext
from hubsig._verifier import Verification

__all__ = ["Delivery"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery whose signature matched: its parsed payload, trace, key, and raw body.

    With a store, ``payload`` holds only the events this attempt must process,
    ``arrived`` the payload as it arrived, and ``claims`` the claims this
    attempt holds on them; ``body`` is always the body as it arrived (the
    signature covers it).
    """

    payload: EventsPayload
    trace: TraceContext
    verification: Verification
    body: bytes
    claims: Claims | None = field(default=None, repr=False, compare=False)
    arrived: EventsPayload | None = field(default=None, repr=False, compare=False)

    @property
    def arrived_ids(self) -> tuple[str, ...]:
        """Every entity id of the delivery as it arrived, duplicates included: what a 200
        acknowledges (``@webhook`` lists these; an app behind the middleware should too)."""
        return (self.arrived or self.payload).entity_ids

    def fresh_body(self) -> bytes:
        """The body with only ``payload``'s events: what an app behind the middleware reads.

        The body as it arrived when every event is fresh; otherwise the same
        JSON document with the already-processed events taken out of
        ``data.entities`` (so a route that parses the body itself cannot
        process them again). ``body`` stays the signed body.
        """
        if self.arrived is None or len(self.arrived.events) == len(self.payload.events):
            return self.body
        fresh = {id(event) for event in self.payload.events}
        keep = [i for i, event in enumerate(self.arrived.events) if id(event) in fresh]
        document = json.loads(self.body)
        entities = document["data"]["entities"]
        document["data"]["entities"] = [entities[i] for i in keep]
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    @property
    def redelivered(self) -> bool:
        """Whether an earlier attempt at one of these events may have done some of its work.

        True when an event's earlier claim expired unsettled: that worker
        crashed, or its handler outlasted the lease without renewing it. A
        handler whose effects are not in the store's transaction should
        check them before doing them again.
        """
        return self.claims is not None and self.claims.redelivered
