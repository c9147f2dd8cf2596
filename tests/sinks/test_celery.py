"""``hubsig.sinks.celery`` and ``hubsig.workers.celery.once_task`` with a real Celery
worker process and a real Redis broker that writes every command to disk."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubsig.errors import ConfigurationError
from hubsig.sinks import sink_from_url
from hubsig.sinks.celery import CelerySink
from tests.redis_server import RedisServer
from tests.sinks.conftest import post, receiver, signed
from tests.sinks.servers import durable_redis, free_port


def _broker(server: RedisServer) -> str:
    return server.url.rsplit("/", 1)[0] + "/1"


@pytest.fixture(scope="module")
def celery_worker(
    stream_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A Celery worker process running ``tests.sinks.celery_tasks``; its SQLite file."""
    folder = tmp_path_factory.mktemp("celery")
    path = folder / "worker.db"
    env = {**os.environ, "HUBSIG_TEST_BROKER": _broker(stream_redis), "HUBSIG_TEST_DB": str(path)}
    command = [
        sys.executable, "-m", "celery", "-A", "tests.sinks.celery_tasks", "worker",
        "--pool", "threads", "--concurrency", "4", "--without-mingle", "--without-gossip",
        "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    log = (folder / "worker.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "ready." not in (folder / "worker.log").read_text():
            assert process.poll() is None, (folder / "worker.log").read_text()
            assert time.monotonic() < deadline, (folder / "worker.log").read_text()
            time.sleep(0.05)
        yield path
    finally:
        process.kill()  # what a worker must survive anyway; a warm shutdown takes seconds
        process.wait(timeout=30)
        log.close()


def _wait_for(path: Path, keys: set[str], timeout: float = 15) -> list[tuple[str, str, int]]:
    """The rows the worker recorded for ``keys``, once there is one for each."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(path) as db:
            rows = [r for r in db.execute("SELECT * FROM processed") if r[0] in keys]
        if {row[0] for row in rows} == keys or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _keys(*bodies: bytes) -> set[str]:
    import json

    return {
        f"STARTED:{entity['entity']['id']}"
        for body in bodies
        for entity in json.loads(body)["data"]["entities"]
    }


@pytest.mark.slow  # a Celery worker process: about 3 s with its start
def test_each_event_is_one_task_processed_once_by_a_worker_process(
    stream_redis: RedisServer, celery_worker: Path
) -> None:
    first = signed(3, trace_id="463ac35c9f6413ad48485a3953bb6124")
    second = signed(2)
    url = f"celery+{_broker(stream_redis)}?task=record"
    # Two receivers without a shared store: the replay to the second is published again.
    with receiver(sink_from_url(url)) as client:
        assert [post(client, r) for r in (first, second, first)] == [200, 200, 200]
    with receiver(sink_from_url(url)) as client:
        assert post(client, first) == 200
    keys = _keys(first.body, second.body)
    rows = _wait_for(celery_worker, keys)
    time.sleep(0.3)  # the republished tasks have run by now, finding their events done
    rows = _wait_for(celery_worker, keys)
    assert sorted(row[0] for row in rows) == sorted(keys)  # five events, each once
    assert {row[1] for row in rows if row[0] in _keys(first.body)} == {
        "463ac35c9f6413ad48485a3953bb6124"
    }


@pytest.mark.slow
def test_a_task_whose_handler_failed_is_retried_and_recorded_once(
    stream_redis: RedisServer, celery_worker: Path
) -> None:
    request = signed(2)
    with receiver(sink_from_url(f"celery+{_broker(stream_redis)}?task=flaky")) as client:
        assert post(client, request) == 200
    keys = _keys(request.body)
    rows = _wait_for(celery_worker, keys)
    assert len(rows) == 2
    assert not any(row[2] for row in rows)
    with sqlite3.connect(celery_worker) as db:
        attempts = [r[0] for r in db.execute("SELECT key FROM attempts")]
    assert all(attempts.count(key) == 2 for key in keys)  # failed once, then done once


def test_with_the_broker_down_deliveries_get_503(tmp_path: Path) -> None:
    server = durable_redis(tmp_path)
    server.start()
    sink = CelerySink.for_broker(_broker(server), "record")
    try:
        with receiver(sink) as client:
            assert post(client, signed(1)) == 200
            server.stop()
            response = client.post("/", content=(r := signed(1)).body, headers=r.headers)
            assert response.status_code == 503
            assert response.headers["Retry-After"]
    finally:
        server.stop()


def test_an_unreachable_broker_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match="cannot reach its broker"):
        receiver(CelerySink.for_broker(f"redis://127.0.0.1:{free_port()}/0", "record"))


def test_a_broker_that_keeps_its_data_in_memory_stops_start_up(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # appendonly no
    server.start()
    try:
        with pytest.raises(ConfigurationError, match="appendonly no"):
            CelerySink.for_broker(server.url, "record").check()
        CelerySink.for_broker(server.url, "record", durable=False).check()
    finally:
        server.stop()
