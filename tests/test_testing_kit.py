"""hubsig.testing and the pytest plugin: realistic payloads and signed requests for users' tests."""

from __future__ import annotations

import uuid

import pytest

import hubsig
from hubsig import EventType, InteractionSubtype, MediaType
from hubsig.pytest_plugin import Signer
from hubsig.testing import make_entity, make_event, make_events, signed_request


def test_make_events_is_realistic_and_fresh() -> None:
    first, second = make_events(2), make_events(2)
    assert first.operation_id != second.operation_id
    for event in first.events:
        assert event.event_type is EventType.STARTED
        assert event.entity is not None
        assert event.entity.id is not None
        uuid.UUID(event.entity.id)
        assert (
            event.entity.self_uri
            == f"https://nexus.example/nexus/v3/chat/sessions/{event.entity.id}"
        )
    assert len(set(first.entity_ids) | set(second.entity_ids)) == 4
    assert hubsig.parse_events(first.to_json()) == first


def test_every_field_can_be_overridden() -> None:
    payload = make_events(
        operation_id="op-1",
        event_type="PAUSED",
        media_type=MediaType.EMAIL,
        interaction_subtype=InteractionSubtype.SMS,
    )
    (event,) = payload.events
    assert (payload.operation_id, event.event_type) == ("op-1", "PAUSED")
    assert event.entity is not None
    assert (event.entity.media_type, event.entity.interaction_subtype) == (
        MediaType.EMAIL,
        InteractionSubtype.SMS,
    )
    chosen = make_events(
        events=[
            make_event(EventType.FINISHED, id="i-1"),
            make_event(entity=make_entity(id="i-2", self_uri=None)),
        ]
    )
    assert chosen.entity_ids == ("i-1", "i-2")


def test_signed_request_is_what_a_receiver_accepts() -> None:
    request = signed_request(make_events(), "kit-secret", algorithm="sha256", trace_id="a" * 32)
    assert (
        hubsig.verify(request.body, request.headers["X-Hub-Signature"], "kit-secret").algorithm
        == "sha256"
    )
    assert request.headers["X-B3-TraceId"] == request.trace_id == "a" * 32
    tampered = signed_request(request.body, "kit-secret", tamper=True)
    with pytest.raises(hubsig.SignatureMismatch):
        hubsig.verify(tampered.body, tampered.headers["X-Hub-Signature"], "kit-secret")


def test_plugin_fixtures(hubsig_secret: str, hubsig_signer: Signer) -> None:
    request = hubsig_signer()
    hubsig.verify(request.body, request.headers["X-Hub-Signature"], hubsig_secret)


def test_plugin_is_registered_for_users(pytester: pytest.Pytester) -> None:
    """A user's test file, run by pytest with only hubsig installed, gets the fixtures."""
    pytester.makepyfile(
        """
        import hubsig

        def test_uses_the_fixtures(hubsig_secret, hubsig_signer, hubsig_events):
            request = hubsig_signer(hubsig_events(2))
            result = hubsig.verify(request.body, request.headers["X-Hub-Signature"], hubsig_secret)
            assert result.algorithm == "sha1"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
