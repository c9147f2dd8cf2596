"""Rates through a sink: ``python -m benchmarks.end_to_end_sink_rates [redis|jetstream]``.

1. **The receiver's rate**: deliveries per second a sender with 32 connections gets from one
   receiver process, ``hubsig serve --to URL`` (claim in SQLite, publish, 200), against the
   same ``@hubsig.webhook`` receiver processing inline with a 50 ms handler, sync
   (``time.sleep``, in uvicorn's thread pool) and async (``asyncio.sleep``).
2. **The workers' rate and latency**: with 1, 2 and 4 worker processes
   (``benchmarks.end_to_end_sinks``' workers: each event's key committed to SQLite in the
   worker store's transaction), events per second from the first 200 to the last commit,
   and the p50/p99 from the sender's 200 to the worker's commit.

Prints one JSON object. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import hubsig
from benchmarks.crashes import Receiver, free_port
from benchmarks.end_to_end_sinks import Broker, Worker, sink_url, worker_command
from hubsig.testing import make_events

SECRET = "rates-secret"
PATH = "/webhooks/interactions"


def post_all(port: int, bodies: list[bytes], threads: int = 32) -> tuple[float, dict[str, float]]:
    """Post every body (each until 200) over ``threads`` keep-alive connections; the wall
    time, and when each event was first acknowledged."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    acknowledged: dict[str, float] = {}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not queue:
                    connection.close()
                    return
                body = queue.pop()
            headers = {"X-Hub-Signature": hubsig.sign(body, SECRET)}
            headers["Content-Type"] = "application/json"
            while True:
                try:
                    connection.request("POST", PATH, body, headers)
                    response = connection.getresponse()
                    response.read()
                    if response.status == 200:
                        break
                except OSError:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                time.sleep(0.01)
            now = time.time()
            with lock:
                for entity in json.loads(body)["data"]["entities"]:
                    acknowledged.setdefault(f"STARTED:{entity['entity']['id']}", now)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return time.perf_counter() - started, acknowledged


def inline_app(kind: str, port: int, path: str) -> None:
    """``--inline-app sync|async PORT DB``: a receiver whose handler takes 50 ms."""
    import asyncio

    import uvicorn

    from hubsig.stores import SQLiteStore

    store = SQLiteStore(path)
    if kind == "sync":

        def handler(payload: hubsig.EventsPayload) -> None:
            time.sleep(0.05)

        endpoint = hubsig.webhook(secret=SECRET, store=store)(handler)
    else:

        async def async_handler(payload: hubsig.EventsPayload) -> None:
            await asyncio.sleep(0.05)

        endpoint = hubsig.webhook(secret=SECRET, store=store)(async_handler)
    uvicorn.run(endpoint, host="127.0.0.1", port=port, log_level="error", access_log=False)


def receiver_rates(kind: str, folder: Path, url: str, deliveries: int) -> dict[str, Any]:
    env = {**os.environ, "HUBSIG_SECRET": SECRET}
    rates: dict[str, Any] = {}
    variants = {
        "sink": [sys.executable, "-m", "hubsig", "serve", "--to", url.replace("events", "rates")
                 .replace("EVENTS", "RATES"), "--store", str(folder / "sink.db")],
        "inline_sync_50ms": [sys.executable, "-m", "benchmarks.end_to_end_sink_rates",
                             "--inline-app", "sync"],
        "inline_async_50ms": [sys.executable, "-m", "benchmarks.end_to_end_sink_rates",
                              "--inline-app", "async"],
    }  # fmt: skip
    for name, command in variants.items():
        port = free_port()
        if name == "sink":
            command = [*command, "--port", str(port)]
        else:
            command = [*command, str(port), str(folder / f"{name}.db")]
        receiver = Receiver(command, env, port, folder / f"{name}.log")
        receiver.start()
        bodies = [make_events(1).to_json() for _ in range(deliveries)]
        post_all(port, bodies[:200])  # warm up
        seconds, _ = post_all(port, bodies[200:])
        receiver.stop()
        rates[name] = round((deliveries - 200) / seconds)
    rates["engine"] = kind
    return rates


def worker_rates(kind: str, folder: Path, url: str, events: int, count: int) -> dict[str, Any]:
    """Events per second and ack-to-commit latency with ``count`` worker processes."""
    run = folder / f"workers-{count}"
    run.mkdir()
    stream_url = url.replace("events", f"w{count}").replace("EVENTS", f"W{count}")
    env = {**os.environ, "HUBSIG_SECRET": SECRET, "HUBSIG_E2E_DB": str(run / "worker.db")}
    env["HUBSIG_E2E_BROKER"] = stream_url.split("?")[0]
    env["HUBSIG_E2E_STREAM"] = stream_url.split("=")[-1]
    port = free_port()
    serve = [sys.executable, "-m", "hubsig", "serve", "--to", stream_url, "--port", str(port),
             "--store", str(run / "receiver.db")]  # fmt: skip
    receiver = Receiver(serve, env, port, run / "receiver.log")
    receiver.start()
    workers = [Worker(worker_command(kind), env, run / f"worker-{n}.log") for n in range(count)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)  # the workers connect and make their group or consumer
    bodies = [make_events(1).to_json() for _ in range(events)]
    _, acknowledged = post_all(port, bodies, threads=8)
    committed = _wait(run / "worker.db", set(acknowledged))
    for worker in workers:
        worker.stop()
    receiver.stop()
    latencies = sorted(max(0.0, committed[key] - at) for key, at in acknowledged.items())
    first, last = min(acknowledged.values()), max(committed.values())
    return {
        "workers": count,
        "events": len(committed),
        "events_per_second": round(len(committed) / (last - first)),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000),
    }


def _wait(path: Path, keys: set[str], timeout: float = 300) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with sqlite3.connect(path, timeout=30) as db:
                rows = db.execute("SELECT key, min(at) FROM processed GROUP BY key").fetchall()
        except sqlite3.OperationalError:
            rows = []
        committed = {key: at for key, at in rows}
        if keys <= set(committed) or time.monotonic() > deadline:
            return committed
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("engine", nargs="?", default="redis", choices=("redis", "jetstream"))
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--inline-app", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.inline_app:
        kind, port, path = arguments.inline_app
        inline_app(kind, int(port), path)
        return
    folder = Path(tempfile.mkdtemp(prefix="hubsig-rates-"))
    broker = Broker(arguments.engine, folder)
    broker.start()
    url = sink_url(arguments.engine, broker)
    try:
        result: dict[str, Any] = {"cores": os.cpu_count()}
        result["receiver_deliveries_per_second"] = receiver_rates(
            arguments.engine, folder, url, arguments.deliveries
        )
        result["workers"] = [
            worker_rates(arguments.engine, folder, url, arguments.events, count)
            for count in (1, 2, 4)
        ]
    finally:
        broker.kill()
        subprocess.run(["rm", "-rf", str(folder)], check=False)  # noqa: S603, S607
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
