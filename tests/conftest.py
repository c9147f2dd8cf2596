"""Shared fixtures, and a hypothesis profile fit for shared, noisy machines."""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from hubsig._check import DeliveryCheck
from hubsig.stores import MemoryStore, SQLiteStore
from tests.redis_server import RedisServer, require_redis, shared_url

# No per-example deadline, and no health check failing a run because one
# example happened to be slow on a loaded machine.
settings.register_profile("hubsig", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hubsig")

EXAMPLE_DELIVERY = Path(__file__).parent.parent / "examples" / "delivery.json"
_PROVIDERS: list[Any] = []


@pytest.fixture(autouse=True)
def telemetry_when_asked() -> None:
    """With ``HUBSIG_TEST_TELEMETRY=1``, every test runs with ``hubsig.otel`` instrumented
    (``python -m fuzz.mutation --telemetry``): what a test asserts of a delivery must hold
    whether telemetry watches the flow or not."""
    if os.environ.get("HUBSIG_TEST_TELEMETRY") != "1":
        return
    from hubsig import _telemetry

    if _telemetry.observer is not None:
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    import hubsig.otel

    if not _PROVIDERS:
        _PROVIDERS.extend((TracerProvider(), MeterProvider()))
    hubsig.otel.instrument(*_PROVIDERS)


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
    from tests import postgres_server

    postgres_server.require_postgres()
    url = postgres_server.shared_url()
    if url is not None:
        yield url
        return
    server = postgres_server.PostgresServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        server.remove()


def fresh_table() -> str:
    """A table name of its own for one test, so tests sharing a server never meet."""
    return f"hubsig_test_{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_redis()
    url = shared_url()
    if url is not None:
        yield url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def fresh_prefix() -> str:
    return f"hubsig-test-{uuid.uuid4().hex}:"


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        from hubsig.stores.postgres import PostgresStore

        postgres = PostgresStore(request.getfixturevalue("postgres_url"), table=fresh_table())
        postgres.check()
        yield postgres
        postgres.close()
        return
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "events.db")
        yield sqlite
        sqlite.close()
        return
    from hubsig.stores.redis import RedisStore

    redis_store = RedisStore(request.getfixturevalue("redis_url"), prefix=fresh_prefix())
    yield redis_store
    redis_store.close()
