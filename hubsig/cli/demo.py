"""``hubsig demo``: the whole loop on this machine, in one process tree.

Starts ``hubsig serve`` on a free loopback port with a fresh random secret,
sends a handful of good deliveries and one with a tampered signature, stops
the receiver, and prints what it accepted and refused. Exits 0 only if every
good delivery was accepted and recorded and the tampered one was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from hubsig._payload import parse_events
from hubsig._scheme import SCHEMES
from hubsig.cli.event_log import read_event_log
from hubsig.cli.options import need
from hubsig.cli.sending import Outcome, Planned, plan, post_all
from hubsig.cli.serving import LISTENING
from hubsig.errors import UsageError

__all__ = ["add_command"]

GOOD = (
    ("STARTED", "chat", "InboundNew", 1),
    ("STARTED", "email", "InboundNew", 2),
    ("FINISHED", "chat", "WhatsApp", 1),
    ("STARTED", "chat", "FacebookPrivate", 1),
    ("FINISHED", "email", "Outbound", 3),
)


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="run a receiver, send it good and tampered deliveries, show the verdicts"
    )
    demo.add_argument(
        "--scheme",
        choices=sorted(SCHEMES),
        default="genesys-multicloud",
        help="the signature scheme both sides use (default: genesys-multicloud)",
    )
    demo.set_defaults(run=run_demo)


def run_demo(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    need("httpx")
    need("uvicorn")
    secret = secrets.token_urlsafe(24)
    scheme = SCHEMES[arguments.scheme]
    planned = [
        plan(
            number,
            secret,
            events=count,
            event_type=event_type,
            media_type=media_type,
            interaction_subtype=interaction_subtype,
            scheme=scheme,
        )
        for number, (event_type, media_type, interaction_subtype, count) in enumerate(GOOD, 1)
    ]
    planned.append(plan(len(GOOD) + 1, secret, tamper=True, scheme=scheme))
    with tempfile.TemporaryDirectory(prefix="hubsig-demo-") as folder:
        out = Path(folder) / "events.jsonl"
        receiver = _start_receiver(secret, out, arguments.scheme)
        try:
            url = _listening_url(receiver)
            print(f"receiver: {url} (hubsig serve, pid {receiver.pid})\n")
            outcomes = asyncio.run(post_all(url, planned, concurrency=1, timeout=10))
        finally:
            receiver.send_signal(signal.SIGTERM)
            receiver.wait(timeout=30)
            if receiver.stdout is not None:
                receiver.stdout.close()
        recorded = [record["entity"]["id"] for record in read_event_log(out)]
    print(_table(outcomes))
    return _verdict(outcomes, recorded)


def _start_receiver(secret: str, out: Path, scheme: str) -> subprocess.Popen[str]:
    store = out.with_suffix(".db")
    command = [sys.executable, "-m", "hubsig", "serve", "--port", "0", "--out", str(out)]
    command += ["--store", str(store), "--scheme", scheme]
    environment = {**os.environ, "HUBSIG_SECRET": secret}
    return subprocess.Popen(  # noqa: S603 (our own module, no shell)
        command, stdout=subprocess.PIPE, text=True, env=environment
    )


def _listening_url(receiver: subprocess.Popen[str]) -> str:
    assert receiver.stdout is not None
    line = receiver.stdout.readline()
    if not line.startswith(LISTENING):
        raise UsageError(f"the receiver did not start (it said {line.strip()!r})")
    return line[len(LISTENING) :].strip()


def _expected_ids(planned: Planned) -> tuple[str, ...]:
    return parse_events(planned.body).entity_ids


def _table(outcomes: list[Outcome]) -> str:
    rows = [("#", "sent", "expected", "answer", "verdict")]
    for outcome in outcomes:
        payload = parse_events(outcome.planned.body)
        first = payload.events[0]
        entity = first.entity
        kinds = " ".join(
            _wire(value)
            for value in (
                first.event_type,
                entity.media_type if entity else None,
                entity.interaction_subtype if entity else None,
            )
        )
        sent = (
            f"{len(payload.events)} x {kinds}"
            if outcome.planned.should_accept
            else "1 delivery, tampered signature"
        )
        expected = "accept" if outcome.planned.should_accept else "refuse"
        answer = f"{outcome.status} code {outcome.code}" if outcome.error is None else outcome.error
        verdict = ("accepted" if outcome.accepted else "refused") + (
            "" if outcome.as_expected else "  << unexpected"
        )
        rows.append((str(outcome.planned.number), sent, expected, answer, verdict))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _wire(value: object) -> str:
    return "-" if value is None else str(getattr(value, "value", value))


def _verdict(outcomes: list[Outcome], recorded: list[str]) -> int:
    good = [outcome for outcome in outcomes if outcome.planned.should_accept]
    expected_ids = [entity_id for o in good for entity_id in _expected_ids(o.planned)]
    tampered = [outcome for outcome in outcomes if not outcome.planned.should_accept]
    sent = len(expected_ids)
    print(f"\nthe receiver recorded {len(recorded)} event(s); good deliveries carried {sent}")
    problems = []
    if not all(outcome.as_expected for outcome in outcomes):
        problems.append("a delivery did not get the expected answer")
    if any(outcome.status != 401 for outcome in tampered):
        problems.append("the tampered delivery was not answered 401")
    if sorted(recorded) != sorted(expected_ids):
        problems.append("the recorded events are not exactly the good deliveries' events")
    if problems:
        print("demo FAILED: " + "; ".join(problems))
        return 1
    print("demo OK: every good delivery was accepted and recorded, the tampered one refused (401)")
    return 0
