"""hubsig.testing and the pytest plugin: realistic payloads and signed requests for users' tests."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

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


# --- an app configured from the environment at import -----------------------------------

APP_FROM_ENV = """
import hubsig

config = hubsig.WebhookConfig.from_env()  # read when the module is imported
interactions = hubsig.WebhookEndpoint(lambda payload: None, config=config)
"""

CONFTEST_IMPORTING_THE_APP = """
import pytest
from starlette.testclient import TestClient

from app import interactions  # the earliest import a project can make


@pytest.fixture
def client():
    return TestClient(interactions)
"""

TEST_OF_THE_APP = """
import os


def test_signed_deliveries_are_accepted(client, hubsig_signer, hubsig_secret):
    request = hubsig_signer()
    assert client.post("/", content=request.body, headers=request.headers).status_code == 200
    assert hubsig_secret == os.environ.get("HUBSIG_SECRET", hubsig_secret)


def test_tampered_deliveries_are_refused(client, hubsig_signer):
    request = hubsig_signer(tamper=True)
    assert client.post("/", content=request.body, headers=request.headers).status_code == 401
"""


@pytest.fixture
def from_env_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's project whose app reads its secret at import, imported by its conftest.py;
    the environment as a fresh shell leaves it (this session's own plugin set a secret)."""
    monkeypatch.delenv("HUBSIG_SECRET", raising=False)
    monkeypatch.delenv("HUBSIG_SECRET_FILE", raising=False)
    pytester.makepyfile(app=APP_FROM_ENV, conftest=CONFTEST_IMPORTING_THE_APP)
    pytester.makepyfile(test_app=TEST_OF_THE_APP)
    pytester.syspathinsert()
    return pytester


def test_an_app_built_from_env_at_import_works_first_time(
    from_env_project: pytest.Pytester,
) -> None:
    """Once ``set exactly one of HUBSIG_SECRET and HUBSIG_SECRET_FILE`` at collection."""
    from_env_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert "HUBSIG_SECRET" not in os.environ  # the session put back what it found


def test_the_test_secret_is_the_documented_one(from_env_project: pytest.Pytester) -> None:
    from_env_project.makepyfile(
        test_secret="""
        import os

        from hubsig.pytest_plugin import TEST_SECRET


        def test_the_session_secret(hubsig_secret):
            assert os.environ["HUBSIG_SECRET"] == hubsig_secret == TEST_SECRET
            assert TEST_SECRET == "hubsig-test-secret"  # what docs/guide/testing.md says
        """
    )
    from_env_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_a_secret_the_user_set_is_kept_and_signed_with(
    from_env_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSIG_SECRET", "the-users-own")
    from_env_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert os.environ["HUBSIG_SECRET"] == "the-users-own"


def test_a_secret_file_the_user_set_is_kept_and_signed_with(
    from_env_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("newest-secret\nolder-secret\n", encoding="utf-8")
    monkeypatch.setenv("HUBSIG_SECRET_FILE", str(secrets))
    from_env_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
    assert "HUBSIG_SECRET" not in os.environ


@pytest.mark.slow
def test_the_plugin_can_be_turned_off(from_env_project: pytest.Pytester) -> None:
    """``-p no:hubsig``: nothing set, so the app's own error shows, as without the plugin."""
    result = from_env_project.runpytest_subprocess("-p", "no:hubsig", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*set exactly one of HUBSIG_SECRET and HUBSIG_SECRET_FILE*"])
