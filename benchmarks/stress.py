"""At-least-once without double processing, under load: ``python -m benchmarks.stress [COUNT]``.

Starts ``hubsig serve`` (SQLite store, JSON Lines sink) on loopback and drives
it with ``hubsig send --concurrency 64`` with 10% duplicate and 5% tampered
deliveries, retrying non-200 answers as the sender does. Then checks, from
the sender's report and the receiver's sink: every accepted event is in the
sink exactly once, no tampered delivery was accepted, no 5xx. Prints the
figures as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SECRET = "stress-secret"


def run(count: int = 20_000, concurrency: int = 64) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hubsig-stress-") as folder:
        base = Path(folder)
        out, store, report = base / "events.jsonl", base / "events.db", base / "report.jsonl"
        env = {**os.environ, "HUBSIG_SECRET": SECRET}
        serve = [sys.executable, "-m", "hubsig", "serve", "--port", "0"]
        serve += ["--out", str(out), "--store", str(store)]
        server = subprocess.Popen(  # noqa: S603 (our own module)
            serve, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split("listening on ", 1)[1].strip()
            send = [sys.executable, "-m", "hubsig", "send", url, "--count", str(count)]
            send += ["--concurrency", str(concurrency), "--duplicates", "0.1"]
            send += ["--tamper-rate", "0.05", "--retries", "3", "--seed", "7"]
            send += ["--report", str(report)]
            started = time.perf_counter()
            sent = subprocess.run(  # noqa: S603
                send, capture_output=True, text=True, env=env, timeout=1800, check=False
            )
            elapsed = time.perf_counter() - started
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            if server.stdout is not None:
                server.stdout.close()
        rows = [json.loads(line) for line in report.read_text().splitlines()]
        recorded = [json.loads(line)["entity"]["id"] for line in out.read_text().splitlines()]
    return figures(rows, recorded, elapsed, sent.stdout.strip().splitlines()[-1])


def figures(
    rows: list[dict[str, Any]], recorded: list[str], elapsed: float, summary: str
) -> dict[str, Any]:
    """What the run proves: losses, doubles, tampered accepted, 5xx, throughput, latency."""
    accepted_ids = {i for row in rows if row["accepted"] for i in row["sent_ids"]}
    good_ids = {i for row in rows if not row["tampered"] for i in row["sent_ids"]}
    tampered_ids = {i for row in rows if row["tampered"] for i in row["sent_ids"]}
    latencies = sorted(row["seconds"] for row in rows)
    return {
        "deliveries": len(rows),
        "duplicates_sent": sum(row["duplicate_of"] is not None for row in rows),
        "tampered_sent": sum(row["tampered"] for row in rows),
        "accepted_deliveries": sum(row["accepted"] for row in rows),
        "retried_deliveries": sum(row["attempts"] > 1 for row in rows),
        "events_accepted": len(accepted_ids),
        "events_recorded": len(recorded),
        "lost_events": len(accepted_ids - set(recorded)),
        "events_recorded_twice": len(recorded) - len(set(recorded)),
        "good_events_never_accepted": len(good_ids - accepted_ids),
        "tampered_accepted": sum(row["accepted"] for row in rows if row["tampered"]),
        "tampered_events_recorded": len(tampered_ids & set(recorded)),
        "responses_5xx": sum((row["status"] or 0) >= 500 for row in rows),
        "errors": sum(row["error"] is not None for row in rows),
        "seconds": elapsed,
        "deliveries_per_second": len(rows) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "sender_summary": summary,
    }


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
    print(json.dumps(result, indent=1))
