"""The scaling-out examples (``examples/scaling_out_*.py``), run as the docs page shows them:
a receiver publishing to a real engine, a real worker processing each event once."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import pytest
import redis

import hubsig
from hubsig.testing import SignedRequest, make_events, signed_request
from tests.redis_server import RedisServer

SECRET = "scaling-out-secret"


def _requests() -> list[SignedRequest]:
    first = signed_request(make_events(3), SECRET, scheme=hubsig.GENESYS_MULTICLOUD)
    second = signed_request(make_events(2), SECRET, scheme=hubsig.GENESYS_MULTICLOUD)
    return [first, second, first]  # the last one a replay


def _send(endpoint: Any, requests: list[SignedRequest]) -> None:
    from starlette.testclient import TestClient

    with TestClient(endpoint) as client:
        for request in requests:
            response = client.post("/", content=request.body, headers=request.headers)
            assert response.status_code == 200, response.text


def _rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM interactions").fetchall()


def _example(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Any:
    monkeypatch.setenv("HUBSIG_SECRET", SECRET)
    monkeypatch.setenv("WORKER_DB", str(tmp_path / "worker.db"))
    monkeypatch.setenv("RECEIVER_DB", str(tmp_path / "receivers.db"))
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    return importlib.import_module(f"examples.{name}")


def test_the_redis_streams_example(
    stream_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis.Redis.from_url(stream_redis.url).delete("interactions")
    example = _example("scaling_out_redis", monkeypatch, tmp_path, REDIS_URL=stream_redis.url)
    _send(example.receiver(), _requests())
    worker = example.worker()
    worker.block = 0.05
    while worker.run_once():
        pass
    rows = _rows(tmp_path / "worker.db")
    assert len(rows) == 5 == len({row[0] for row in rows})


def test_the_jetstream_example(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fresh_stream() -> None:
        client = await nats.connect(nats_url)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream("INTERACTIONS")
        await client.close()

    asyncio.run(fresh_stream())
    example = _example("scaling_out_jetstream", monkeypatch, tmp_path, NATS_URL=nats_url)
    receiver = example.receiver()
    _send(receiver, _requests())
    receiver.config.sink.close()
    worker = example.worker()
    worker.fetch_wait = 0.2

    async def work() -> None:
        await worker.connect()
        while await worker.run_once():
            pass
        await worker.close()

    asyncio.run(work())
    rows = _rows(tmp_path / "worker.db")
    assert len(rows) == 5 == len({row[0] for row in rows})


@pytest.mark.slow
def test_the_celery_example_with_a_worker_process(
    stream_redis: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = stream_redis.url.rsplit("/", 1)[0] + "/2"
    example = _example("scaling_out_celery", monkeypatch, tmp_path, CELERY_BROKER=broker)
    log = (tmp_path / "worker.log").open("w")
    command = [sys.executable, "-m", "celery", "-A", "examples.scaling_out_celery", "worker",
               "--pool", "solo", "--without-mingle", "--without-gossip"]  # fmt: skip
    worker = subprocess.Popen(command, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    try:
        _send(example.receiver(), _requests())
        deadline = time.monotonic() + 30
        while len(_rows(tmp_path / "worker.db")) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # a sixth row would have come by now
    finally:
        worker.kill()
        worker.wait(timeout=30)
        log.close()
    rows = _rows(tmp_path / "worker.db")
    assert len(rows) == 5 == len({row[0] for row in rows}), (tmp_path / "worker.log").read_text()
