"""A full disk under ``hubsig serve``: ``python -m benchmarks.disk_full`` (root: mounts a tmpfs).

Two runs, each of 900 deliveries of 4 events retried until 200, with the
disk filled for 3 s in the middle:

- ``sink``: the JSON Lines file is on a 8 MiB tmpfs, the store on the usual disk;
- ``both``: the store file is on the tmpfs as well, so commits fail too.

Then checks the file: every line whole JSON, no event twice, every
acknowledged event present, no line of a delivery that was not acknowledged
(a phantom). Prints the figures as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hubsig
from benchmarks.crashes import Receiver, free_port, send_until_acknowledged
from hubsig.testing import make_events

SECRET = "crash-secret"


def run(where: str, deliveries: int = 900) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hubsig-disk-") as folder:
        base = Path(folder)
        tiny = base / "tiny"
        tiny.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(tiny)]
        subprocess.run(mount, check=True)  # noqa: S603 (Debian's mount, our own folder)
        try:
            return _run(base, tiny, where, deliveries)
        finally:
            subprocess.run(["umount", str(tiny)], check=False)  # noqa: S603, S607


def _run(base: Path, tiny: Path, where: str, deliveries: int) -> dict[str, Any]:
    out = tiny / "events.jsonl"
    store = (tiny if where == "both" else base) / "events.db"
    port = free_port()
    command = [sys.executable, "-m", "hubsig", "serve", "--port", str(port)]
    command += ["--out", str(out), "--store", str(store), "--lease", "2"]
    log = base / "serve.log"
    receiver = Receiver(command, {**os.environ, "HUBSIG_SECRET": SECRET}, port, log)
    receiver.start()
    bodies = [make_events(4).to_json() for _ in range(deliveries)]
    sent = {i for body in bodies for i in hubsig.parse_events(body).entity_ids}
    filler = tiny / "filler"

    def fill_for_three_seconds() -> None:
        time.sleep(0.1)
        try:
            with open(filler, "wb") as stuffing:
                while True:
                    stuffing.write(b"\0" * 4096)
                    stuffing.flush()
        except OSError:
            pass  # full
        time.sleep(3)
        filler.unlink()

    filling = threading.Thread(target=fill_for_three_seconds)
    filling.start()
    answers = send_until_acknowledged(port, bodies, threads=8)
    filling.join()
    receiver.stop()
    logged = log.read_text(encoding="utf-8")
    text = out.read_bytes().decode("utf-8")
    lines = text.split("\n")
    whole = text.endswith("\n") or not text
    records = []
    broken = 0
    for line in lines[:-1] if whole else lines:
        try:
            records.append(json.loads(line)["entity"]["id"])
        except (ValueError, KeyError):
            broken += 1
    counts = Counter(records)
    return {
        "full": where,
        "deliveries": deliveries,
        "events": len(sent),
        "lines": len(records),
        "partial_or_broken_lines": broken + (0 if whole else 1),
        "doubled": sum(count - 1 for count in counts.values() if count > 1),
        "lost": len(sent - set(records)),
        "phantom": len(set(records) - sent),
        "exports_refused_by_the_disk": logged.count("could not write accepted events"),
        "store_calls_refused_by_the_disk": logged.count("the delivery store failed")
        + logged.count("could not commit"),
        **answers,
    }


if __name__ == "__main__":
    for where in ("sink", "both"):
        print(json.dumps(run(where), indent=1))
