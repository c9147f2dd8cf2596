"""Fixtures for the sink and worker tests: real servers, signed deliveries, a receiver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import hubsig
from hubsig.sinks import Sink
from hubsig.stores import MemoryStore
from hubsig.testing import SignedRequest, make_events, signed_request
from tests.redis_server import RedisServer
from tests.sinks.servers import NatsServer, durable_redis, require_nats, shared_nats_url

SECRET = "sink-secret"


@pytest.fixture(scope="session")
def stream_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server with an append-only file synced at every write, for the session."""
    server = durable_redis(tmp_path_factory.mktemp("stream-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A nats-server with JetStream: ``HUBSIG_NATS_URL``, else one of the session's own."""
    require_nats()
    url = shared_nats_url()
    if url is not None:
        yield url
        return
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test's own, which it may stop and start again."""
    require_nats()
    server = NatsServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fresh_name(prefix: str = "hubsig") -> str:
    """A stream, group or task name of one test's own (letters, digits and dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def signed(count: int = 3, trace_id: str | None = None) -> SignedRequest:
    return signed_request(make_events(count), SECRET, trace_id=trace_id)


def receiver(sink: Sink, store: object | None = None) -> TestClient:
    """A ``WebhookEndpoint`` whose events go to ``sink`` (a ``TestClient``; enter it to
    run the lifespan)."""
    config = hubsig.WebhookConfig(
        secret=SECRET,
        sink=sink,
        store=store if store is not None else MemoryStore(),  # type: ignore[arg-type]
    )
    return TestClient(hubsig.WebhookEndpoint(config=config))


def post(client: TestClient, request: SignedRequest) -> int:
    response = client.post("/", content=request.body, headers=request.headers)
    return response.status_code
