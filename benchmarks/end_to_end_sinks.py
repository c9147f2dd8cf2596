"""Each event once from the sender to the worker, through a sink, under ``kill -9``.

``python -m benchmarks.end_to_end_sinks [redis|jetstream|celery ...] [--events N]``

For each engine: a broker that persists (redis-server with ``appendfsync always``;
nats-server with JetStream on file storage; Celery on that Redis), two ``hubsig serve
--to URL`` receivers sharing one SQLite store, and three worker processes
(``RedisStreamWorker``, ``JetStreamWorker``, Celery workers running ``once_task``)
that write each event's key to a shared SQLite file in the worker store's
transaction. A sender posts N events (3 per delivery) from 16 threads to either
receiver, each delivery retried until it gets a 200 (as the Genesys sender does),
with one in ten sent again byte for byte once acknowledged (a replay) and one in
twenty of its events sent again in a new delivery under a new operation id (a
duplicate). Meanwhile, spread over the run, it kills a receiver with SIGKILL 4 times,
a worker 4 times (each started again), and kills and restarts the broker twice.
Once the sender is done it waits for the workers to drain, then counts: every event
the sender saw acknowledged must have been committed by a worker exactly once.

Prints one JSON object per engine, with the folder it leaves behind for inspection (the
receivers' and workers' logs, the broker's files: Redis's append-only file tells what became
of a lost message). Not part of the test suite (minutes, not seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.crashes import Receiver, Sender, free_port
from hubsig.testing import make_event, make_events

SECRET = "end-to-end-secret"
EVENTS_PER_DELIVERY = 3
LEASE = 3.0
"""Seconds a killed receiver's or worker's claims block their events (and a Redis entry's
idle time, JetStream's ack_wait): short, so the run is not spent waiting."""


CHAOS = ("receiver", "worker", "broker")
"""What the run kills: receivers 4 times, workers 4 times, the broker twice."""


class Broker:
    """redis-server or nats-server on a fixed port and folder: killed and started again with
    its data (the append-only file, the JetStream store)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind, self.folder, self.port = kind, folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "nats" if self.kind == "jetstream" else "redis"
        return f"{scheme}://127.0.0.1:{self.port}" + ("" if scheme == "nats" else "/0")

    def start(self) -> None:
        if self.kind == "jetstream":
            command = ["nats-server", "-js", "-sd", str(self.folder / "js"),
                       "-a", "127.0.0.1", "-p", str(self.port)]  # fmt: skip
        else:
            command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                       "--dir", str(self.folder), "--save", "", "--appendonly", "yes",
                       "--appendfsync", "always"]  # fmt: skip
        log = open(self.folder / "broker.log", "ab")  # noqa: SIM115 (the process holds it)
        self.process = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        _wait_for_port(self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def _wait_for_port(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


class Worker:
    """One worker process that can be killed and started again."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        output = open(self.log, "ab")  # noqa: SIM115 (the process holds it)
        self.process = subprocess.Popen(  # noqa: S603 (our own modules)
            self.command, env=self.env, stdout=output, stderr=output
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def sink_url(kind: str, broker: Broker) -> str:
    if kind == "redis":
        return f"{broker.url}?stream=events"
    if kind == "jetstream":
        return f"{broker.url}?stream=EVENTS"
    return f"celery+{broker.url.rsplit('/', 1)[0]}/1?task=record"


def worker_command(kind: str) -> list[str]:
    if kind == "celery":
        return [sys.executable, "-m", "celery", "-A", "benchmarks.end_to_end_sinks", "worker",
                "--pool", "solo", "--without-mingle", "--without-gossip",
                "--loglevel", "WARNING"]  # fmt: skip
    return [sys.executable, "-m", "benchmarks.end_to_end_sinks", "--worker", kind]


# --- the worker processes --------------------------------------------------------------


def _worker_store() -> Any:
    from hubsig.stores import SQLiteStore

    path = os.environ["HUBSIG_E2E_DB"]
    with sqlite3.connect(path, timeout=30) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS processed (key TEXT, at REAL, pid INT)")
    return SQLiteStore(path)


def _record(event: Any) -> None:
    """Each event's key, committed with the event's completion in the worker's store."""
    event.transaction().execute(
        "INSERT INTO processed VALUES (?, ?, ?)", (event.key, time.time(), os.getpid())
    )


def _policy() -> Any:
    from hubsig._dedupe import DedupePolicy

    return DedupePolicy(lease=LEASE)


def _log_warnings() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")


def run_worker(kind: str) -> None:
    """The body of one worker process (``--worker KIND``), until SIGTERM."""
    _log_warnings()
    url = os.environ["HUBSIG_E2E_BROKER"]
    if kind == "redis":
        from hubsig.workers.redis_streams import RedisStreamWorker

        stream = os.environ.get("HUBSIG_E2E_STREAM", "events")
        worker = RedisStreamWorker(
            url, stream, "workers", store=_worker_store(), handler=_record, policy=_policy()
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        worker.run(stop)
        return
    from hubsig.workers.jetstream import JetStreamWorker

    nats_worker = JetStreamWorker(
        url,
        os.environ.get("HUBSIG_E2E_STREAM", "EVENTS"),
        "workers",
        store=_worker_store(),
        handler=_record,
        policy=_policy(),
    )

    async def main() -> None:
        stopping = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        while True:  # the stream is made by the first receiver: wait for it
            try:
                await nats_worker.connect()
                break
            except Exception:
                await asyncio.sleep(0.5)
        await nats_worker.run(stopping)

    asyncio.run(main())


if os.environ.get("HUBSIG_E2E_CELERY"):  # a Celery worker process imports this module
    from celery import Celery

    from hubsig.workers.celery import once_task

    app = Celery("e2e", broker=os.environ["HUBSIG_E2E_BROKER"], set_as_current=False)
    app.conf.broker_transport_options = {"visibility_timeout": 2 * LEASE}
    app.conf.worker_hijack_root_logger = False
    _log_warnings()
    record = once_task(app, store=_worker_store(), name="record", policy=_policy())(_record)


# --- the run ---------------------------------------------------------------------------


def bodies(events: int, seed: int = 7) -> list[list[bytes]]:
    """The sender's work: each item a list of bodies posted in order (a delivery, then its
    replay, or a duplicate of one of its events in a new delivery under a new operation id)."""
    rng = random.Random(seed)
    work: list[list[bytes]] = []
    for _ in range(events // EVENTS_PER_DELIVERY):
        operation = str(uuid.UUID(int=rng.getrandbits(128)))
        payload = make_events(EVENTS_PER_DELIVERY, operation_id=operation)
        item = [payload.to_json()]
        if rng.random() < 0.1:
            item.append(item[0])  # a replay, byte for byte
        if rng.random() < 0.05:
            again = [payload.events[0], make_event(id=str(uuid.UUID(int=rng.getrandbits(128))))]
            item.append(make_events(events=again).to_json())
        work.append(item)
    rng.shuffle(work)
    return work


def run(kind: str, events: int, chaos_kinds: tuple[str, ...] = CHAOS) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"hubsig-e2e-{kind}-"))
    broker = Broker(kind, folder)
    broker.start()
    url = sink_url(kind, broker)
    env = {**os.environ, "HUBSIG_SECRET": SECRET, "HUBSIG_E2E_DB": str(folder / "worker.db")}
    env["HUBSIG_E2E_BROKER"] = url.split("?")[0].removeprefix("celery+")
    if kind == "celery":
        env["HUBSIG_E2E_CELERY"] = "1"
    ports = [free_port(), free_port()]
    store = str(folder / "receivers.db")
    serve = [sys.executable, "-m", "hubsig", "serve", "--to", url, "--store", store]
    receivers = [
        Receiver([*serve, "--port", str(port), "--lease", str(LEASE)], env, port, log)
        for port, log in zip(
            ports, (folder / "receiver-0.log", folder / "receiver-1.log"), strict=True
        )
    ]
    for receiver in receivers:
        receiver.start()
    workers = [Worker(worker_command(kind), env, folder / f"worker-{n}.log") for n in range(3)]
    for worker in workers:
        worker.start()

    work = bodies(events)
    rng = random.Random(11)
    acknowledged_at: dict[bytes, float] = {}
    sender = Sender(SECRET, lambda: rng.choice(ports), "/webhooks/interactions")
    post = sender.post

    def timed_post(body: bytes) -> None:
        post(body)
        acknowledged_at.setdefault(body, time.time())

    sender.post = timed_post  # type: ignore[method-assign]
    actions = [a for a in ["receiver"] * 4 + ["worker"] * 4 + ["broker"] * 2 if a in chaos_kinds]
    random.Random(3).shuffle(actions)
    done = threading.Event()
    made: Counter[str] = Counter()

    def chaos() -> None:
        step = len(work) / (len(actions) + 1)
        for n, action in enumerate(actions, 1):
            while len(acknowledged_at) < n * step and not done.is_set():
                time.sleep(0.05)
            if done.is_set():
                return
            if action == "receiver":
                victim = rng.choice(receivers)
                victim.kill()
                victim.start()
            elif action == "worker":
                worker = rng.choice(workers)
                worker.kill()
                worker.start()
            else:
                broker.kill()
                time.sleep(0.5)
                broker.start()
            made[action] += 1

    started = time.time()
    chaos_thread = threading.Thread(target=chaos)
    chaos_thread.start()
    sender.run(work, threads=16)
    sent_at = time.time()
    done.set()
    chaos_thread.join()

    expected = _acknowledged_keys(acknowledged_at)
    committed = _drain(folder / "worker.db", expected)
    for process in (*workers,):
        process.stop()
    for receiver in receivers:
        receiver.stop()
    broker.kill()

    counts = Counter(key for key, _, _ in committed)
    first_commit: dict[str, float] = {}
    for key, at, _ in committed:
        first_commit.setdefault(key, at)
    lost = expected - set(counts)
    doubled = {key for key, count in counts.items() if count > 1}
    latencies = sorted(
        max(0.0, first_commit[key] - at)
        for key, at in expected_times(acknowledged_at).items()
        if key in first_commit
    )
    last_commit = max(first_commit.values()) if first_commit else sent_at
    return {
        "engine": kind,
        "events_acknowledged": len(expected),
        "events_committed": len(counts),
        "lost": len(lost),
        "doubled": len(doubled),
        "committed_not_acknowledged": len(set(counts) - expected),
        "kills": dict(made),
        "answers": dict(sender.statuses),
        "seconds_sending": round(sent_at - started, 1),
        "seconds_to_last_commit": round(last_commit - started, 1),
        "events_per_second": round(len(counts) / max(0.001, last_commit - started)),
        "latency_ack_to_commit_ms": {
            "p50": round(_quantile(latencies, 0.5) * 1000),
            "p99": round(_quantile(latencies, 0.99) * 1000),
        },
        "lost_sample": sorted(lost)[:5],
        "folder": str(folder),
    }


def _acknowledged_keys(acknowledged_at: dict[bytes, float]) -> set[str]:
    return set(expected_times(acknowledged_at))


def expected_times(acknowledged_at: dict[bytes, float]) -> dict[str, float]:
    """Each acknowledged event's key, with the time the sender first saw it acknowledged."""
    times: dict[str, float] = {}
    for body, at in acknowledged_at.items():
        for entity in json.loads(body)["data"]["entities"]:
            key = f"{entity['event']}:{entity['entity']['id']}"
            times[key] = min(at, times.get(key, at))
    return times


Row = tuple[str, float, int]


def _drain(path: Path, expected: set[str], quiet: float = 4 * LEASE) -> list[Row]:
    """The committed rows once every expected key is there and nothing changed for ``quiet``
    seconds (a late double would show), or nothing changed for 120 s (the rest is lost)."""
    last, since = -1, time.monotonic()
    while True:
        with sqlite3.connect(path, timeout=30) as db:
            rows: list[Row] = db.execute("SELECT * FROM processed").fetchall()
        if len(rows) != last:
            last, since = len(rows), time.monotonic()
        keys = {row[0] for row in rows}
        waited = time.monotonic() - since
        if (expected <= keys and waited > quiet) or waited > 120:
            return rows
        time.sleep(0.5)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("engines", nargs="*", default=["redis", "jetstream", "celery"])
    parser.add_argument("--events", type=int, default=12_000)
    parser.add_argument(
        "--kill",
        default=",".join(CHAOS),
        help="what to kill during the run, of receiver,worker,broker (default: all three)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        run_worker(arguments.worker)
        return
    for kind in arguments.engines:
        chaos = tuple(part for part in arguments.kill.split(",") if part)
        print(json.dumps(run(kind, arguments.events, chaos)), flush=True)


if __name__ == "__main__":
    main()
