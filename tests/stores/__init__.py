"""The store tests: one contract run against every store, then each store's own behaviour."""

from __future__ import annotations

import hubsig
from hubsig._dedupe import event_keys, unique_keys
from hubsig.testing import signed_request
from tests.harness import Sent

SECRET = "store-secret"


class Clock:
    """A clock a test moves by hand (``clock.now += 10``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def signed(payload: hubsig.EventsPayload) -> Sent:
    """``payload`` as a correctly signed delivery."""
    request = signed_request(payload, SECRET)
    return Sent([request.body], dict(request.headers))


def keys_of(sent: Sent) -> list[str]:
    """The store keys of a delivery's events, as the receiver claims them."""
    payload = hubsig.parse_events(sent.body)
    return unique_keys(event_keys(payload, sent.body))
