"""Shared fixtures, and a hypothesis profile fit for shared, noisy machines."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from hubsig._receiver import DeliveryCheck

# No per-example deadline, and no health check failing a run because one
# example happened to be slow on a loaded machine.
settings.register_profile("hubsig", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hubsig")

EXAMPLE_DELIVERY = Path(__file__).parent.parent / "examples" / "delivery.json"


@pytest.fixture
def seed_body() -> bytes:
    """The seed's example delivery, exactly as signed in the vectors."""
    return EXAMPLE_DELIVERY.read_bytes()


def use_static_secrets(check: DeliveryCheck) -> None:
    """``check.use_secrets`` with what a synchronous resolver (or static secrets) gives."""
    resolved = check.resolve()
    assert not inspect.isawaitable(resolved)
    check.use_secrets(resolved)
