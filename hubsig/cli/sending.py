"""``hubsig send``: act as the Genesys sender against a receiver.

Builds realistic payloads (fresh UUIDs, a ``selfUri``) or takes one from a
file, signs each, adds a B3 trace id, posts them with ``httpx`` (``--count``
of them, ``--concurrency`` at a time), and reports each delivery or, for
many, a progress bar and a summary. ``--tamper`` signs other bytes than it
sends, to check that the receiver refuses them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from hubsig._models import EventType, InteractionSubtype, MediaType
from hubsig._payload import parse_events
from hubsig._response import parse_events_response
from hubsig._scheme import Scheme
from hubsig.cli.options import (
    add_scheme_arguments,
    add_secret_arguments,
    need,
    scheme_from,
    secrets_from,
)
from hubsig.errors import MalformedPayload, UsageError
from hubsig.testing import make_events, signed_request

__all__ = ["Outcome", "Planned", "add_command", "plan", "post_all", "summary"]

PER_LINE_LIMIT = 10
RETRY_LATER = (409, 503)


@dataclass(frozen=True)
class Planned:
    """One delivery to send, and what a correct receiver should do with it."""

    number: int
    body: bytes
    headers: dict[str, str]
    trace_id: str
    should_accept: bool
    duplicate_of: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What the receiver answered to one delivery."""

    planned: Planned
    status: int | None
    seconds: float
    code: int | None = None
    ids: tuple[str, ...] = ()
    error: str | None = None
    attempts: int = 1

    @property
    def accepted(self) -> bool:
        """200 with status code 0: the receiver took the delivery."""
        return self.status == 200 and self.code == 0

    @property
    def refused(self) -> bool:
        """The receiver refused it: an ``EventsResponse`` with a non-zero code, answered with
        a 4xx (or a 200, for receivers that acknowledge refusals). A 404 page, a 500 or a
        200 from an app that ran anyway is no refusal."""
        return self.code not in (None, 0) and (
            self.status == 200 or 400 <= (self.status or 0) < 500
        )

    @property
    def retry_later(self) -> bool:
        """409 (another worker holds an event) or 503 (busy): not a verdict, a 'try again'."""
        return self.status in RETRY_LATER

    @property
    def as_expected(self) -> bool:
        """Accepted when it should be, refused when it should be; a good delivery the
        receiver asked to retry later (more than ``--retries`` allowed) is not a wrong answer."""
        if self.error is not None:
            return False
        if self.retry_later:
            return self.planned.should_accept
        return self.accepted if self.planned.should_accept else self.refused


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = commands.add_parser("send", help="act as the sender: sign and post deliveries to URL")
    send.add_argument("url", metavar="URL", help="the receiver's webhook URL")
    add_secret_arguments(send)
    send.add_argument(
        "--event-type",
        default="STARTED",
        choices=[e.value for e in EventType],
        help="each event's type (default STARTED)",
    )
    send.add_argument(
        "--media-type",
        default="chat",
        choices=[m.value for m in MediaType],
        help="each entity's media type (default chat)",
    )
    send.add_argument(
        "--interaction-subtype",
        default="InboundNew",
        choices=[s.value for s in InteractionSubtype],
        help="interaction subtype",
    )
    send.add_argument("--events", type=int, default=1, help="events per delivery (default: 1)")
    send.add_argument("--count", type=int, default=1, help="how many deliveries (default: 1)")
    send.add_argument("--concurrency", type=int, default=1, help="deliveries in flight at once")
    add_scheme_arguments(send, many_algorithms=False)
    send.add_argument("--body", metavar="BODY", help="send this file's bytes as every body")
    send.add_argument("--tamper", action="store_true", help="send deliberately wrong signatures")
    send.add_argument(
        "--tamper-rate", type=float, default=0.0, help="fraction of deliveries signed wrongly"
    )
    send.add_argument(
        "--duplicates",
        type=float,
        default=0.0,
        help="fraction of deliveries that re-send an earlier one, byte for byte",
    )
    send.add_argument(
        "--retries",
        type=int,
        default=0,
        help="retry a delivery not answered 200 up to this many times, as the sender does",
    )
    send.add_argument("--seed", type=int, default=None, help="seed for the mix of deliveries")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    send.add_argument(
        "--report", metavar="PATH", help="write one JSON line per delivery: status, ids, trace"
    )
    send.add_argument("--api-key", metavar="KEY", help="send this x-api-key with every delivery")
    send.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="another header to send with every delivery (repeatable)",
    )
    send.add_argument(
        "--trace-id",
        metavar="HEX",
        help="the X-B3-TraceId of every delivery (default: a fresh one each)",
    )
    send.set_defaults(run=run_send)


def run_send(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    need("httpx")
    if arguments.count < 1 or arguments.concurrency < 1 or arguments.events < 1:
        raise UsageError("--count, --concurrency and --events must be at least 1")
    body = _file_body(arguments.body)
    secret = secrets_from(arguments)[0]
    if not 0 <= arguments.duplicates + arguments.tamper_rate <= 1:
        raise UsageError("--duplicates and --tamper-rate are fractions that add up to at most 1")
    scheme = scheme_from(arguments)
    extra = _extra_headers(arguments.header, arguments.api_key)
    trace_id = arguments.trace_id
    if trace_id is not None and not _is_trace_id(trace_id):
        raise UsageError("--trace-id takes 16 or 32 hexadecimal digits, as B3 trace ids are")
    chooser = random.Random(arguments.seed)  # noqa: S311 (a test mix, not a secret)
    planned: list[Planned] = []
    originals: list[Planned] = []  # good deliveries a duplicate may repeat
    duplicate_band = arguments.tamper_rate + arguments.duplicates
    for number in range(1, arguments.count + 1):
        draw = chooser.random()
        if arguments.tamper_rate <= draw < duplicate_band and originals:
            original = chooser.choice(originals)
            planned.append(replace(original, number=number, duplicate_of=original.number))
            continue
        fresh = plan(
            number,
            secret,
            body=body,
            events=arguments.events,
            event_type=arguments.event_type,
            media_type=arguments.media_type,
            interaction_subtype=arguments.interaction_subtype,
            scheme=scheme,
            tamper=arguments.tamper or draw < arguments.tamper_rate,
            trace_id=trace_id,
            headers=extra,
        )
        planned.append(fresh)
        if fresh.should_accept:
            originals.append(fresh)
    many = len(planned) > PER_LINE_LIMIT
    progress = many and sys.stderr.isatty()
    outcomes = asyncio.run(
        post_all(
            arguments.url,
            planned,
            arguments.concurrency,
            arguments.timeout,
            progress=progress,
            retries=arguments.retries,
        )
    )
    if not many:
        for outcome in outcomes:
            print(describe(outcome))
    print(summary(outcomes))
    if arguments.report:
        _write_report(arguments.report, outcomes)
    return 0 if all(outcome.as_expected for outcome in outcomes) else 1


def plan(
    number: int,
    secret: str,
    *,
    body: bytes | None = None,
    events: int = 1,
    event_type: str = "STARTED",
    media_type: str = "chat",
    interaction_subtype: str = "InboundNew",
    scheme: Scheme | None = None,
    tamper: bool = False,
    trace_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Planned:
    """A signed delivery: ``body`` as given, or a fresh payload of ``events`` events."""
    payload = (
        body
        if body is not None
        else make_events(
            events,
            event_type=event_type,
            media_type=media_type,
            interaction_subtype=interaction_subtype,
        )
    )
    request = signed_request(
        payload, secret, scheme=scheme, tamper=tamper, trace_id=trace_id, extra_headers=headers
    )
    return Planned(number, request.body, request.headers, request.trace_id, not tamper)


def _is_trace_id(text: str) -> bool:
    return len(text) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in text)


def _extra_headers(pairs: Sequence[str], api_key: str | None) -> dict[str, str]:
    """``--header NAME:VALUE`` options (and ``--api-key``) as a header mapping."""
    headers: dict[str, str] = {}
    for pair in pairs:
        name, colon, value = pair.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise UsageError(f"--header takes NAME:VALUE, not {pair[:40]!r}")
        headers[name.strip()] = value.strip()
    if api_key is not None:
        headers["x-api-key"] = api_key
    return headers


async def post_all(
    url: str,
    planned: Sequence[Planned],
    concurrency: int,
    timeout: float,
    progress: bool = False,
    retries: int = 0,
) -> list[Outcome]:
    """Post every delivery, ``concurrency`` at a time; outcomes come back in plan order."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # httpx writes the head and the body separately; without TCP_NODELAY, Nagle's
    # algorithm holds the body until the server's delayed ACK (~40 ms per request).
    transport = httpx.AsyncHTTPTransport(
        limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    )
    gate = asyncio.Semaphore(concurrency)
    done = 0
    async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:

        async def post(delivery: Planned) -> Outcome:
            nonlocal done
            async with gate:
                outcome = await _post_one(client, url, delivery)
                for attempt in range(2, retries + 2):
                    if outcome.status == 200:
                        break
                    await asyncio.sleep(0.05 * attempt)
                    outcome = replace(await _post_one(client, url, delivery), attempts=attempt)
            done += 1
            if progress:
                _show_progress(done, len(planned))
            return outcome

        outcomes = await asyncio.gather(*(post(delivery) for delivery in planned))
    if progress:
        print(file=sys.stderr)
    return list(outcomes)


async def _post_one(client: object, url: str, delivery: Planned) -> Outcome:
    import httpx

    assert isinstance(client, httpx.AsyncClient)
    start = time.perf_counter()
    try:
        # As bytes: httpx refuses non-ASCII text values, and a key may be UTF-8.
        headers = [(name.encode(), value.encode()) for name, value in delivery.headers.items()]
        response = await client.post(url, content=delivery.body, headers=headers)
    except httpx.HTTPError as error:
        elapsed = time.perf_counter() - start
        return Outcome(delivery, None, elapsed, error=f"{type(error).__name__}: {error}")
    elapsed = time.perf_counter() - start
    try:
        answer = parse_events_response(response.content)
    except MalformedPayload:
        return Outcome(delivery, response.status_code, elapsed)
    return Outcome(delivery, response.status_code, elapsed, answer.code, answer.ids)


def describe(outcome: Outcome) -> str:
    """One line for one delivery: number, status, verdict, latency, ids, trace id."""
    planned = outcome.planned
    verdict = "accepted" if outcome.accepted else "refused" if outcome.refused else "other"
    if outcome.retry_later:
        verdict = "later"
    if outcome.error is not None:
        verdict = f"error ({outcome.error})"
    expected = "" if outcome.as_expected else "  << unexpected"
    ids = ",".join(outcome.ids) or "-"
    return (
        f"#{planned.number:<3} {outcome.status or '---'} {verdict:<8} "
        f"{outcome.seconds * 1e3:7.1f} ms  ids={ids}  trace={planned.trace_id}{expected}"
    )


def summary(outcomes: Sequence[Outcome]) -> str:
    """Totals and latency percentiles for a run."""
    accepted = sum(outcome.accepted for outcome in outcomes)
    errors = sum(outcome.error is not None for outcome in outcomes)
    later = sum(outcome.retry_later for outcome in outcomes)
    refused = sum(outcome.refused and not outcome.retry_later for outcome in outcomes)
    other = len(outcomes) - accepted - errors - later - refused
    unexpected = sum(not outcome.as_expected for outcome in outcomes)
    latencies = sorted(outcome.seconds for outcome in outcomes)
    p50 = latencies[len(latencies) // 2] * 1e3 if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3 if latencies else 0.0
    return (
        f"sent {len(outcomes)}, accepted {accepted}, refused {refused}, errors {errors}, "
        f"asked to retry later {later}, other answers {other}, unexpected {unexpected}; "
        f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def _show_progress(done: int, total: int, width: int = 30) -> None:
    """Redraw the bar on stderr when a whole percent more is done (and at the end)."""
    if done != total and 100 * done // total == 100 * (done - 1) // total:
        return
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def _write_report(path: str, outcomes: Sequence[Outcome]) -> None:
    with open(path, "w", encoding="utf-8") as report:
        for outcome in outcomes:
            record = {
                "number": outcome.planned.number,
                "status": outcome.status,
                "code": outcome.code,
                "accepted": outcome.accepted,
                "ids": list(outcome.ids),
                "sent_ids": list(_sent_ids(outcome.planned.body)),
                "duplicate_of": outcome.planned.duplicate_of,
                "tampered": not outcome.planned.should_accept,
                "attempts": outcome.attempts,
                "trace_id": outcome.planned.trace_id,
                "seconds": outcome.seconds,
                "error": outcome.error,
            }
            report.write(json.dumps(record) + "\n")


def _sent_ids(body: bytes) -> tuple[str, ...]:
    try:
        return parse_events(body).entity_ids
    except MalformedPayload:
        return ()


def _file_body(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
