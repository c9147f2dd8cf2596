"""Shared fixtures, and a hypothesis profile fit for shared, noisy machines."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL: ``HUBSIG_POSTGRES_URL``, else a private cluster for the run."""
    from tests.postgres_server import PostgresServer, require_postgres, shared_url

    require_postgres()
    url = shared_url()
    if url is not None:
        yield url
        return
    server = PostgresServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server.remove()


def fresh_table() -> str:
    """A table name of its own for one test, so tests sharing a server never meet."""
    return f"hubsig_test_{uuid.uuid4().hex[:16]}"
