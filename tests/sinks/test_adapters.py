"""A sink through every adapter, against a real Redis stream: one rule for all of them (the
app is not called; 200 once the events are in the stream; a replay is not published again)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import redis
from fastapi import Depends

from hubsig import Delivery, WebhookConfig
from hubsig.fastapi import VerifiedDelivery
from hubsig.sinks.redis_streams import RedisStreamSink
from hubsig.stores import MemoryStore
from tests.adapters import ADAPTERS, Adapter, Sent
from tests.redis_server import RedisServer
from tests.sinks.conftest import SECRET, fresh_name, signed


@pytest.mark.parametrize("adapter", ADAPTERS.values(), ids=ADAPTERS.keys())
def test_every_adapter_publishes_instead_of_calling_the_app(
    adapter: Adapter, stream_redis: RedisServer
) -> None:
    stream = fresh_name()
    config = WebhookConfig(
        secret=SECRET, sink=RedisStreamSink(stream_redis.url, stream), store=MemoryStore()
    )
    request = signed(3)
    sent = Sent([request.body], dict(request.headers))
    answers = [adapter(config, sent) for _ in range(2)]  # the delivery and its replay
    assert [answer.status for answer in answers] == [200, 200]
    assert not any(answer.reached_app for answer in answers)
    entries: Any = redis.Redis.from_url(stream_redis.url).xrange(stream)
    ids = [entity["id"] for entity in answers[0].json["data"]["ids"]]
    assert [fields[b"key"].decode() for _, fields in entries] == [f"STARTED:{i}" for i in ids]


class _Down:
    """A sink whose engine is away: every publish fails."""

    blocking = True

    def check(self) -> None:
        pass

    def publish(self, delivery: Any) -> None:
        raise ConnectionError("the engine is away")


_VERIFIED_DOWN = VerifiedDelivery(secret=SECRET, sink=_Down())
"""At module level: FastAPI reads a route's annotations in its module's globals."""


def test_the_fastapi_dependency_answers_a_failed_publish_503_with_retry_after() -> None:
    """Through FastAPI's own exception handler (no ``rejected_response`` installed) too."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    app = FastAPI()

    @app.post("/hook")
    async def hook(delivery: Annotated[Delivery, Depends(_VERIFIED_DOWN)]) -> dict[str, str]:
        raise AssertionError("with a sink, the route never runs")

    request = signed(2)
    with TestClient(app) as client:
        answer = client.post("/hook", content=request.body, headers=request.headers)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
