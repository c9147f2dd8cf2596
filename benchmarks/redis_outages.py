"""Redis going away under two receivers: ``python -m benchmarks.redis_outages [DELIVERIES]``.

Two uvicorn processes (``benchmarks/outage_app.py``) share one ``RedisStore``
(a 5 s socket timeout; first with ``appendfsync always``, then without
persistence). Deliveries of 2 events go to either
process, each retried until 200 and then sent again (a duplicate after the
acknowledgement). Meanwhile Redis is stopped for a second and started again
three times, then made to stall with ``DEBUG SLEEP 7``.

Prints the figures as JSON. With persistence, a double is possible only
where a handler succeeded and the store could not record it (hubsig answers
200 anyway and logs "could not record it" at ERROR): the claim then expires
and a later duplicate runs the handler again, marked ``redelivered``. So
``doubled`` must not exceed ``unrecorded_events``. Without persistence a
restart also forgets every completion, and any duplicate after it runs again:
that bound is the store's, not hubsig's.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hubsig
from benchmarks.crashes import Receiver, Sender, free_port
from hubsig.testing import make_events

SECRET = "outage-secret"


PERSISTENT = ("--appendonly", "yes", "--appendfsync", "always")


def run(deliveries: int = 3000, persistent: bool = True) -> dict[str, Any]:
    import redis

    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="hubsig-outages-") as folder:
        base = Path(folder)
        options = ("--enable-debug-command", "local", *(PERSISTENT if persistent else ()))
        server = RedisServer(base, options)
        server.start()
        sink, logs = base / "sink.txt", [base / "a.log", base / "b.log"]
        env = {**os.environ, "HUBSIG_OUTAGE_REDIS": server.url + "?socket_timeout=5"}
        env["HUBSIG_OUTAGE_SINK"] = str(sink)
        receivers = []
        for log in logs:
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "benchmarks.outage_app:app"]
            command += ["--port", str(port), "--log-level", "warning"]
            receivers.append(Receiver(command, env, port, log))
        for receiver in receivers:
            receiver.start()
        bodies = [make_events(2).to_json() for _ in range(deliveries)]
        rng = random.Random(3)
        sender = Sender(SECRET, lambda: rng.choice(receivers).port, "/")
        # each delivery until it gets a 200, then once more: a duplicate after the 200
        sending = threading.Thread(target=sender.run, args=([[body, body] for body in bodies],))
        sending.start()
        outages = 0
        for _ in range(3):
            time.sleep(1.0)
            server.stop()
            time.sleep(1.0)
            server.start()
            outages += 1
        time.sleep(0.5)
        stall = threading.Thread(
            target=lambda: redis.Redis.from_url(server.url, socket_timeout=30).execute_command(  # type: ignore[no-untyped-call]
                "DEBUG", "SLEEP", 7
            )
        )
        stall.start()
        stall.join()
        sending.join()
        for receiver in receivers:
            receiver.stop()
        server.stop()
        recorded = sink.read_text().split()
        unrecorded = sum(log.read_text().count("could not record it") for log in logs)
    counts = Counter(recorded)
    sent_ids = {i for body in bodies for i in hubsig.parse_events(body).entity_ids}
    return {
        "deliveries": deliveries,
        "events": len(sent_ids),
        "each_sent": "twice (the second after a 200)",
        "redis_persistence": "appendfsync always" if persistent else "none",
        "lease_seconds": 2,
        "redis_restarts": outages,
        "debug_sleep_seconds": 7,
        "recorded": len(recorded),
        "lost": len(sent_ids - set(recorded)),
        "doubled": sum(count - 1 for count in counts.values() if count > 1),
        "unrecorded_deliveries": unrecorded,
        "unrecorded_events": 2 * unrecorded,
        "answers": dict(sender.statuses),
    }


if __name__ == "__main__":
    import json

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    for persistent in (True, False):
        print(json.dumps(run(count, persistent), indent=1))
