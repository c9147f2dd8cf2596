"""pytest fixtures for testing a hubsig receiver, registered through the ``pytest11`` entry point.

In a user's test::

    def test_my_receiver(client, hubsig_signer):
        request = hubsig_signer(hubsig.testing.make_events(2))
        assert client.post("/webhooks/interactions", content=request.body,
                           headers=request.headers).status_code == 200

An app that reads its secret when it is imported (``WebhookConfig.from_env()``)
works as it is: before any conftest or test module is imported, the plugin
sets ``HUBSIG_SECRET`` to ``TEST_SECRET`` for the session, unless
``HUBSIG_SECRET`` or ``HUBSIG_SECRET_FILE`` is set already, and removes it
when the session ends. ``hubsig_secret`` is the secret the environment then
holds, so the fixtures sign with the app's secret (override the fixture to
use another; ``-p no:hubsig`` turns the plugin off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # hubsig itself is imported by the fixtures, not at pytest's start-up
    from hubsig._models import EventsPayload
    from hubsig.testing import SignedRequest

__all__ = ["TEST_SECRET", "Signer", "hubsig_events", "hubsig_secret", "hubsig_signer"]

Signer = Callable[..., "SignedRequest"]

TEST_SECRET = "hubsig-test-secret"  # noqa: S105 (a documented secret for tests, never a real one)
"""The secret the plugin puts in ``HUBSIG_SECRET`` for a test session that has none."""

_SECRET_ENV = "HUBSIG_SECRET"  # noqa: S105 (the variable's name, not a secret)
_SECRET_FILE_ENV = "HUBSIG_SECRET_FILE"  # noqa: S105 (the same)
_SET_HERE = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Set the test secret before the first conftest.py, which may import the app, is read."""
    _provide_test_secret(early_config)


def pytest_configure(config: pytest.Config) -> None:
    """The same, for a plugin loaded later (``pytest_plugins`` in a conftest.py)."""
    _provide_test_secret(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave the environment as the session found it."""
    if config.stash.get(_SET_HERE, False) and os.environ.get(_SECRET_ENV) == TEST_SECRET:
        del os.environ[_SECRET_ENV]


def _provide_test_secret(config: pytest.Config) -> None:
    if _SET_HERE in config.stash:
        return
    unset = not os.environ.get(_SECRET_ENV) and not os.environ.get(_SECRET_FILE_ENV)
    if unset:
        os.environ[_SECRET_ENV] = TEST_SECRET
    config.stash[_SET_HERE] = unset


@pytest.fixture
def hubsig_secret() -> str:
    """The secret the receiver under test is configured with: ``HUBSIG_SECRET`` (``TEST_SECRET``
    unless you set it), or the first secret of ``HUBSIG_SECRET_FILE``; override it to use your
    own."""
    if os.environ.get(_SECRET_ENV):
        return os.environ[_SECRET_ENV]
    if os.environ.get(_SECRET_FILE_ENV):
        lines = Path(os.environ[_SECRET_FILE_ENV]).read_text(encoding="utf-8").splitlines()
        return next(line for line in lines if line.strip())  # from_env's first secret
    return TEST_SECRET


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
