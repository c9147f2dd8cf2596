"""Shared fixtures, and a hypothesis profile fit for shared, noisy machines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# No per-example deadline, and no health check failing a run because one
# example happened to be slow on a loaded machine.
settings.register_profile("hubsig", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hubsig")

EXAMPLE_DELIVERY = Path(__file__).parent.parent / "examples" / "delivery.json"


@pytest.fixture
def seed_body() -> bytes:
    """The seed's example delivery, exactly as signed in the vectors."""
    return EXAMPLE_DELIVERY.read_bytes()
