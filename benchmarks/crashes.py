"""``kill -9`` under load, then count: ``python -m benchmarks.crashes [sqlite|postgres] [KILLS]``.

Starts a receiver on a loopback port and sends it deliveries of 8 events
from 16 threads, each retried until it gets a 200 (as the sender does),
and one in ten sent again once acknowledged (a replay). Meanwhile it kills
the receiver with SIGKILL every 0.5 to 1.5 s and starts it again, KILLS
times. Then it counts what the handler committed:

- ``sqlite``: ``hubsig serve`` (SQLite store, lease 2 s); its JSON Lines
  sink, journalled in the store and exported from it;
- ``postgres``: ``benchmarks/crash_app.py`` under uvicorn (``PostgresStore``,
  lease 2 s); the rows its handler wrote in the lent transaction. Needs
  ``HUBSIG_POSTGRES_URL`` or Debian's ``initdb`` (``tests/postgres_server.py``).

Prints the figures as JSON: every acknowledged event must be recorded
once (``lost`` and ``doubled`` 0).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hubsig
from hubsig.testing import make_events

SECRET = "crash-secret"
EVENTS_PER_DELIVERY = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Receiver:
    """A receiver process that can be killed and started again on the same port."""

    def __init__(
        self, command: list[str], env: dict[str, str], port: int, log: Path | None = None
    ) -> None:
        self.command, self.env, self.port, self.log = command, env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.log is None:
            output: Any = subprocess.DEVNULL
        else:
            output = open(self.log, "ab")  # noqa: SIM115 (the process holds it)
        self.process = subprocess.Popen(  # noqa: S603 (our own modules)
            self.command, env=self.env, stdout=output, stderr=output
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the receiver did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


class Sender:
    """Posts signed bodies, each until it gets a 200, as the Genesys sender retries;
    counts every answer on the way (``refused`` for a connection that failed)."""

    def __init__(self, secret: str, port: Callable[[], int], path: str) -> None:
        self.statuses: Counter[str] = Counter()
        self._secret, self._port, self._path = secret, port, path
        self._lock = threading.Lock()

    def post(self, body: bytes) -> None:
        headers = {"X-Hub-Signature": hubsig.sign(body, self._secret)}
        headers["Content-Type"] = "application/json"
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", self._port(), timeout=30)
            try:
                connection.request("POST", self._path, body, headers)
                status = connection.getresponse().status
            except OSError:
                status = 0
            finally:
                connection.close()  # also when the server was killed mid-request
            with self._lock:
                self.statuses[str(status) if status else "refused"] += 1
            if status == 200:
                return
            time.sleep(0.05 if status else 0.1)

    def run(self, work: list[list[bytes]], threads: int = 16) -> None:
        """Post each item's bodies in order (a delivery, then its duplicate); ``threads``
        items at a time."""
        queue = list(work)

        def worker() -> None:
            while True:
                with self._lock:
                    if not queue:
                        return
                    bodies = queue.pop(0)
                for body in bodies:
                    self.post(body)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()


def send_until_acknowledged(port: int, bodies: list[bytes], threads: int = 16) -> dict[str, Any]:
    """Every body until it gets a 200, and one in ten again afterwards (a replay)."""
    replays = [body for i, body in enumerate(bodies) if i % 10 == 0]
    sender = Sender(SECRET, lambda: port, "/webhooks/interactions")
    sender.run([[body] for body in bodies] + [[body] for body in replays], threads)
    return {"answers": dict(sender.statuses), "replays_sent": len(replays)}


def killing(
    receiver: Receiver, kills: int, done: threading.Event, between: tuple[float, float]
) -> Callable[[], int]:
    """Kill and restart ``receiver`` ``kills`` times in the background; returns a join."""
    made = [0]
    rng = random.Random(7)

    def loop() -> None:
        while made[0] < kills and not done.is_set():
            time.sleep(rng.uniform(*between))
            receiver.kill()
            made[0] += 1
            receiver.start()

    thread = threading.Thread(target=loop)
    thread.start()

    def join() -> int:
        thread.join()
        return made[0]

    return join


def run(
    kind: str = "sqlite",
    kills: int = 8,
    deliveries: int = 1500,
    between: tuple[float, float] = (0.5, 1.5),
) -> dict[str, Any]:
    """One run (see the module's docstring); ``between``: seconds from a start to a kill."""
    bodies = [make_events(EVENTS_PER_DELIVERY).to_json() for _ in range(deliveries)]
    sent_ids = [entity_id for body in bodies for entity_id in hubsig.parse_events(body).entity_ids]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hubsig-crashes-") as folder:
        base = Path(folder)
        env = {**os.environ, "HUBSIG_SECRET": SECRET}
        server = None
        url = table = ""
        if kind == "sqlite":
            out, store = base / "events.jsonl", base / "events.db"
            command = [sys.executable, "-m", "hubsig", "serve", "--port", str(port)]
            command += ["--out", str(out), "--store", str(store), "--lease", "2"]
        else:
            from tests.postgres_server import PostgresServer

            url = os.environ.get("HUBSIG_POSTGRES_URL", "")
            if not url:
                server = PostgresServer()
                server.start()
                url = server.url
            table = f"hubsig_crash_{uuid.uuid4().hex[:8]}"
            _create_sink(url, table)
            env |= {"HUBSIG_CRASH_POSTGRES": url, "HUBSIG_CRASH_TABLE": table}
            env["HUBSIG_CRASH_LEASE"] = "2"
            command = [sys.executable, "-m", "uvicorn", "benchmarks.crash_app:app"]
            command += ["--port", str(port), "--log-level", "warning"]
        receiver = Receiver(command, env, port)
        receiver.start()
        done = threading.Event()
        join = killing(receiver, kills, done, between)
        started = time.perf_counter()
        sending = send_until_acknowledged(port, bodies)
        done.set()
        made = join()
        elapsed = time.perf_counter() - started
        receiver.stop()
        if kind == "sqlite":
            lines = out.read_text(encoding="utf-8").splitlines()
            recorded = [json.loads(line)["entity"]["id"] for line in lines]
            redelivered = None
        else:
            recorded, redelivered = _recorded(url, table)
            if server is not None:
                server.stop()
                server.remove()
    counts = Counter(recorded)
    return {
        "store": kind,
        "kills": made,
        "deliveries": deliveries,
        "events": len(sent_ids),
        "recorded": len(recorded),
        "lost": len(set(sent_ids) - set(recorded)),
        "doubled": sum(count - 1 for count in counts.values() if count > 1),
        "redelivered_events": redelivered,
        "seconds": round(elapsed, 1),
        **sending,
    }


def _create_sink(url: str, table: str) -> None:
    import psycopg

    from hubsig.stores.postgres import PostgresStore

    PostgresStore(url, table=table).check()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE TABLE {table}_sink (id text, redelivered boolean)")


def _recorded(url: str, table: str) -> tuple[list[str], int]:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute(f"SELECT id, redelivered FROM {table}_sink").fetchall()  # noqa: S608
    return [row[0] for row in rows], sum(bool(row[1]) for row in rows)


if __name__ == "__main__":
    chosen = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    print(json.dumps(run(chosen, int(sys.argv[2]) if len(sys.argv) > 2 else 8), indent=1))
