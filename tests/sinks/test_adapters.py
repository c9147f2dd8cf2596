"""A sink through every adapter, against a real Redis stream: one rule for all of them (the
app is not called; 200 once the events are in the stream; a replay is not published again)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from hubsig import WebhookConfig
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
