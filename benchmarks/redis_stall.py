"""A Redis stall longer than the lease, under two receivers: ``python -m benchmarks.redis_stall``.

``python -m benchmarks.redis_stall [sync|async|both] [RUNS] [EVENTS]`` (defaults: both, 3, 20).

Each run starts a private redis-server (``--enable-debug-command local``) and
two receiver processes (``benchmarks/stall_app.py``: uvicorn with an
``AsyncRedisStore``, or gunicorn's threads with a ``RedisStore``; lease 2 s,
a handler of 4 s). Each of EVENTS deliveries of one event goes to receiver
A; half a second later Redis stalls with ``DEBUG SLEEP 4``, longer than the
lease, so A's renewals cannot be confirmed in time; meanwhile every delivery
is also sent to receiver B, and both senders retry until 200 (at most 40 s).

Counts, per run: events whose handler ran twice (``doubled``), hubsig's
ERROR lines saying an event may run again elsewhere, and whether each
double was announced (an ERROR line names its key) and its second run was
marked ``redelivered``. Prints one JSON object per run and a summary; the
exit status is 1 if any double went unannounced or unmarked. Stops by
itself: each run takes about 15 s.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hubsig
from benchmarks.crashes import Receiver, free_port
from hubsig.testing import make_events

SECRET = "stall-secret"
LEASE, HANDLER_SECONDS, STALL_SECONDS = 2.0, 4.0, 4
SECOND_SENDER_AFTER = 1.0
"""Seconds after the first send that the same delivery goes to B (Redis is stalled by then)."""
GIVE_UP_AFTER = 40.0
ANNOUNCEMENT = re.compile(r"^ERROR hubsig .*may run again elsewhere.*?event=(\S+) trace_id=")


def post_until_acknowledged(port: int, body: bytes, statuses: Counter[str], lock: Any) -> None:
    headers = {"X-Hub-Signature": hubsig.sign(body, SECRET), "Content-Type": "application/json"}
    deadline = time.monotonic() + GIVE_UP_AFTER
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=GIVE_UP_AFTER)
        try:
            connection.request("POST", "/", body, headers)
            status = connection.getresponse().status
        except OSError:
            status = 0
        finally:
            connection.close()
        with lock:
            statuses[str(status or "refused")] += 1
        if status == 200:
            return
        time.sleep(0.2)


def receiver_command(mode: str, port: int) -> list[str]:
    if mode == "async":
        return [
            sys.executable, "-m", "uvicorn", "benchmarks.stall_app:app", "--port", str(port),
            "--log-level", "warning",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "gunicorn", "benchmarks.stall_app:wsgi", "--bind",
        f"127.0.0.1:{port}", "--worker-class", "gthread", "--threads", "64", "--workers", "1",
        "--timeout", "60", "--log-level", "warning",
    ]  # fmt: skip


def run_once(mode: str, events: int) -> dict[str, Any]:
    import redis

    from tests.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="hubsig-stall-") as folder:
        base = Path(folder)
        server = RedisServer(base, ("--enable-debug-command", "local"))
        server.start()
        sink, logs = base / "sink.txt", [base / "a.log", base / "b.log"]
        env = {
            **os.environ,
            "HUBSIG_STALL_MODE": mode,
            "HUBSIG_STALL_REDIS": server.url,
            "HUBSIG_STALL_SINK": str(sink),
            "HUBSIG_STALL_LEASE": str(LEASE),
            "HUBSIG_STALL_HANDLER": str(HANDLER_SECONDS),
        }
        receivers = []
        for log in logs:
            port = free_port()
            receivers.append(Receiver(receiver_command(mode, port), env, port, log))
        try:
            for receiver in receivers:
                receiver.start()
            payloads = [make_events(1) for _ in range(events)]
            statuses: Counter[str] = Counter()
            lock = threading.Lock()
            senders = []
            for payload in payloads:
                for receiver in receivers:
                    sender = threading.Thread(
                        target=post_until_acknowledged,
                        args=(receiver.port, payload.to_json(), statuses, lock),
                    )
                    senders.append((receiver is receivers[1], sender))
            for second, sender in senders:
                if not second:
                    sender.start()
            time.sleep(0.5)
            stall = threading.Thread(
                target=lambda: redis.Redis.from_url(server.url).execute_command(  # type: ignore[no-untyped-call]
                    "DEBUG", "SLEEP", STALL_SECONDS
                )
            )
            stall.start()
            time.sleep(SECOND_SENDER_AFTER - 0.5)
            for second, sender in senders:
                if second:
                    sender.start()
            stall.join()
            for _, sender in senders:
                sender.join()
        finally:
            for receiver in receivers:
                receiver.stop()
            server.stop()
        runs = [line.split() for line in sink.read_text().splitlines()]
        by_event: dict[str, list[str]] = {}
        for _pid, mark, entity_id in runs:
            by_event.setdefault(entity_id, []).append(mark)
        log_lines = [line for log in logs for line in log.read_text().splitlines()]
        announced = {m.group(1) for line in log_lines if (m := ANNOUNCEMENT.match(line))}
        doubled = {entity_id for entity_id, marks in by_event.items() if len(marks) > 1}
        unannounced = {e for e in doubled if f"STARTED:{e}" not in announced}
        unmarked = {e for e in doubled if by_event[e][1:].count("redelivered") < 1}
        return {
            "mode": mode,
            "events": events,
            "handled": len(by_event),
            "handler_runs": len(runs),
            "doubled": len(doubled),
            "error_lines": sum(1 for line in log_lines if ANNOUNCEMENT.match(line)),
            "events_announced": len(announced),
            "doubled_unannounced": len(unannounced),
            "doubled_second_run_not_redelivered": len(unmarked),
            "statuses": dict(statuses),
            "log_levels": Counter(line.split(" ", 1)[0] for line in log_lines),
            "log_samples": sorted({re.sub(r"[0-9a-f-]{32,}", "…", line) for line in log_lines})[:6],
        }


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "both"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    results = []
    for each in ("sync", "async") if mode == "both" else (mode,):
        for _ in range(runs):
            result = run_once(each, events)
            print(json.dumps(result), flush=True)
            results.append(result)
    dishonest = sum(
        r["doubled_unannounced"] + r["doubled_second_run_not_redelivered"] for r in results
    )
    summary = {
        "runs": len(results),
        "doubled": [r["doubled"] for r in results],
        "error_lines": [r["error_lines"] for r in results],
        "doubles_unannounced_or_unmarked": dishonest,
    }
    print(json.dumps(summary))
    return 1 if dishonest else 0


if __name__ == "__main__":
    sys.exit(main())
