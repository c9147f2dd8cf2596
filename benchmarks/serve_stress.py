"""Idle and slow-head connections cannot deny ``hubsig serve`` its genuine deliveries.

``python -m benchmarks.serve_stress [--idle N] [--slow N] [--at S ...] [--header-timeout S]
[--max-waiting-connections N]``
starts ``hubsig serve`` on loopback, opens ``--idle`` connections that
send nothing and ``--slow`` connections that dribble a request head one
byte every ``--drip`` seconds, and reopens each one the receiver closes, so
the attack keeps its size for the whole run. While they are open it sends
one genuine signed delivery (hubsig's own signing, a fresh connection) at
each of ``--at`` seconds (1, 30 and 60 by default) and records its status
and latency. It stops by itself after the last delivery, and prints a table
of the deliveries and one of the attack: connections the receiver closed,
the longest an attacking connection lived, and how many were open when each
delivery went out.

Exit status 1 if any delivery was not answered 200 within ``--within``
seconds (1), or did not reach the ``--out`` file. Only 127.0.0.1 is ever
connected to.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hubsig.cli.event_log import read_event_log
from hubsig.cli.serving import LISTENING
from hubsig.testing import make_events, signed_request

SECRET = "serve-stress-secret"
HOST = "127.0.0.1"
PATH = "/webhooks/interactions"
SLOW_HEAD = (
    f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    "X-Hub-Signature: sha1=" + "0" * 40 + "\r\n" + "X-Padding: " + "p" * 400 + "\r\n\r\n"
).encode()
"""Far longer than any run: at a byte a second this head is never complete."""


@dataclass(slots=True)
class Attack:
    """What the attacking connections saw, counted by the client."""

    open: int = 0
    opened: int = 0
    closed_by_receiver: int = 0
    refused: int = 0
    longest: float = 0.0
    stopping: bool = False


@dataclass(slots=True)
class Delivery:
    """One genuine delivery: when it went out, how it was answered."""

    at: float
    status: int | None = None
    latency: float | None = None
    error: str | None = None
    ids: list[str] = field(default_factory=list)
    attack_open: int = 0
    stored: bool = False


def main(argv: Sequence[str] | None = None) -> int:
    options = arguments().parse_args(argv)
    room = make_room_for_files(options.idle + options.slow + 256)
    print(f"open files allowed: {room} (ulimit -n soft limit, raised if needed)")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "events.jsonl"
        serve, url = start_serve(Path(folder), options)
        try:
            attack, deliveries = asyncio.run(run(options, url))
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=30)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
        stored = {record["entity"]["id"] for record in read_event_log(out)}
    for delivery in deliveries:
        delivery.stored = bool(delivery.ids) and set(delivery.ids) <= stored
    print_tables(options, attack, deliveries)
    failed = [
        d
        for d in deliveries
        if d.status != 200 or d.latency is None or d.latency > options.within or not d.stored
    ]
    if failed:
        print(f"FAILED: {len(failed)} of {len(deliveries)} good deliveries not stored with 200 "
              f"within {options.within} s")  # fmt: skip
        return 1
    print(f"OK: every good delivery answered 200 within {options.within} s, and stored")
    return 0


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_stress")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections (1000)")
    parser.add_argument("--slow", type=int, default=300, help="slow-head connections (300)")
    parser.add_argument("--drip", type=float, default=1.0, help="seconds per head byte (1)")
    parser.add_argument(
        "--at", type=float, nargs="+", default=[1.0, 30.0, 60.0],
        help="seconds into the attack when good deliveries go out (1 30 60)",
    )  # fmt: skip
    parser.add_argument("--within", type=float, default=1.0, help="latency allowed (1 s)")
    parser.add_argument(
        "--header-timeout", type=float, help="passed to hubsig serve (default: serve's own)"
    )
    parser.add_argument(
        "--max-waiting-connections",
        type=int,
        help="passed to hubsig serve (default: serve's own)",
    )
    return parser


def make_room_for_files(needed: int) -> int:
    """Raise the soft limit on open files to ``needed`` as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def start_serve(folder: Path, options: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "hubsig", "serve", "--host", HOST, "--port", "0",
        "--out", str(folder / "events.jsonl"), "--store", str(folder / "events.db"),
    ]  # fmt: skip
    if options.header_timeout is not None:
        command += ["--header-timeout", str(options.header_timeout)]
    if options.max_waiting_connections is not None:
        command += ["--max-waiting-connections", str(options.max_waiting_connections)]
    environment = {**os.environ, "HUBSIG_SECRET": SECRET}
    log = (folder / "serve.log").open("w")
    serve = subprocess.Popen(  # noqa: S603 (our own module)
        command, stdout=subprocess.PIPE, stderr=log, text=True, env=environment
    )
    assert serve.stdout is not None
    line = serve.stdout.readline()
    if not line.startswith(LISTENING):
        serve.kill()
        raise SystemExit(f"hubsig serve did not start: {(folder / 'serve.log').read_text()}")
    return serve, line[len(LISTENING) :].strip()


async def run(options: argparse.Namespace, url: str) -> tuple[Attack, list[Delivery]]:
    port = int(url.split(":")[2].split("/")[0])
    attack = Attack()
    tasks = [asyncio.create_task(idle(port, attack)) for _ in range(options.idle)]
    tasks += [asyncio.create_task(slow(port, attack, options.drip)) for _ in range(options.slow)]
    start = time.monotonic()
    deliveries = []
    for at in sorted(options.at):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        delivery = Delivery(at=at, attack_open=attack.open)
        # A thread of its own: the attack's event loop does not delay its timing.
        await asyncio.to_thread(deliver, port, delivery)
        deliveries.append(delivery)
    attack.stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return attack, deliveries


async def idle(port: int, attack: Attack) -> None:
    """Connect and send nothing; when the receiver closes the connection, connect again."""
    while not attack.stopping:
        await attacking(port, attack, b"", 0.0)


async def slow(port: int, attack: Attack, drip: float) -> None:
    """Send a request head one byte every ``drip`` seconds; reconnect when closed."""
    while not attack.stopping:
        await attacking(port, attack, SLOW_HEAD, drip)


async def attacking(port: int, attack: Attack, head: bytes, drip: float) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        attack.refused += 1
        await asyncio.sleep(0.1)
        return
    opened = time.monotonic()
    attack.open += 1
    attack.opened += 1
    closed = asyncio.create_task(reader.read(1))
    try:
        for byte in range(len(head)):
            done, _ = await asyncio.wait({closed}, timeout=drip)
            if done:
                break
            writer.write(head[byte : byte + 1])
        if await closed == b"":
            attack.closed_by_receiver += 1
            attack.longest = max(attack.longest, time.monotonic() - opened)
    except OSError:
        attack.closed_by_receiver += 1
        attack.longest = max(attack.longest, time.monotonic() - opened)
    finally:
        closed.cancel()
        attack.open -= 1
        writer.close()


def deliver(port: int, delivery: Delivery) -> None:
    """One signed Genesys delivery on a fresh connection, timed from connect to answer."""
    payload = make_events(1)
    request = signed_request(payload, SECRET)
    delivery.ids = [e.entity.id for e in payload.events if e.entity and e.entity.id]
    started = time.monotonic()
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST", PATH, body=request.body, headers=request.headers)
        response = connection.getresponse()
        response.read()
        delivery.status = response.status
        delivery.latency = time.monotonic() - started
    except OSError as error:
        delivery.error = f"{type(error).__name__}: {error}"
    finally:
        connection.close()


def print_tables(options: argparse.Namespace, attack: Attack, deliveries: list[Delivery]) -> None:
    print(f"\n{options.idle} idle and {options.slow} slow-head connections (one byte every "
          f"{options.drip} s), reopened whenever the receiver closes one\n")  # fmt: skip
    print("| delivery at | attacking connections open | status | latency | in --out |")
    print("|---:|---:|---:|---:|---|")
    for d in deliveries:
        latency = f"{d.latency * 1000:.1f} ms" if d.latency is not None else d.error
        print(f"| {d.at:g} s | {d.attack_open} | {d.status} | {latency} | {d.stored} |")
    print("\n| attacking connections opened | closed by the receiver | refused | longest lived |")
    print("|---:|---:|---:|---:|")
    print(f"| {attack.opened} | {attack.closed_by_receiver} | {attack.refused} "
          f"| {attack.longest:.2f} s |\n")  # fmt: skip
    print(json.dumps({"attack": {k: getattr(attack, k) for k in Attack.__slots__},
                      "deliveries": [{k: getattr(d, k) for k in Delivery.__slots__}
                                     for d in deliveries]}))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
