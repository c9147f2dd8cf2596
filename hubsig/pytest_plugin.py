"""pytest fixtures for testing a hubsig receiver, registered through the ``pytest11`` entry point.

In a user's test::

    def test_my_receiver(client, hubsig_signer):
        request = hubsig_signer(hubsig.testing.make_events(2))
        assert client.post("/webhooks/interactions", content=request.body,
                           headers=request.headers).status_code == 200

``hubsig_secret`` is the secret the receiver under test should be configured
with (override the fixture to use your own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # hubsig itself is imported by the fixtures, not at pytest's start-up
    from hubsig._models import EventsPayload
    from hubsig.testing import SignedRequest

Signer = Callable[..., "SignedRequest"]


@pytest.fixture
def hubsig_secret() -> str:
    """The secret for the receiver under test; override it to use your own."""
    return "hubsig-test-secret"


@pytest.fixture
def hubsig_signer(hubsig_secret: str) -> Signer:
    """``hubsig_signer(payload_or_body, **options)``: a ``SignedRequest`` with ``hubsig_secret``.

    With no payload it signs ``make_events()``; ``options`` go to ``signed_request``.
    """

    from hubsig.testing import make_events, signed_request

    def signer(payload: EventsPayload | bytes | None = None, **options: Any) -> SignedRequest:
        chosen = payload if payload is not None else make_events()
        return signed_request(chosen, hubsig_secret, **options)

    return signer


@pytest.fixture
def hubsig_events() -> Callable[..., EventsPayload]:
    """``hubsig.testing.make_events``, as a fixture."""
    from hubsig.testing import make_events

    return make_events
