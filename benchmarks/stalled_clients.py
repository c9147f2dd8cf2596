"""Stalled clients cannot make ``hubsig serve`` hold unbounded memory.

``python -m benchmarks.stalled_clients [--max-inflight-bytes N] [--body-timeout S] ...``
starts ``hubsig serve`` on loopback and, in each of ``--rounds`` rounds,
opens ``--connections`` raw TCP connections to it, each posting a
well-formed but wrong ``X-Hub-Signature`` with ``Content-Length:
max_body_size - 1``, sending all of the body but its last byte, and then
stalling with the socket open. While they stall, the receiver's RSS is
sampled from ``/proc/<pid>/status`` and one good signed delivery is sent.
Last, one chunked request keeps sending past ``max_body_size``.

Checks (exit status 1 if any fails), in every round:

- peak RSS <= RSS at rest + ``max_inflight_bytes`` + ``connections *
  FREE_BYTES`` (the first 64 KiB of each body, which the budget leaves
  uncounted so that small deliveries are never refused) + a fixed 64 MiB
  margin. The budget counts the body bytes the app holds; below it, uvicorn and h11
  buffer a connection's bytes (up to the 64 KiB high-water mark, plus the
  read that crossed it) before the app can refuse it, and each connection
  has a transport, a parser, a task and a scope. 64 MiB is about 220 KiB
  for each of 300 connections, and a fifth of the 315 MiB the receiver grew
  by before it had a budget, so a missing bound cannot pass;
- exactly ``max_inflight_bytes // (Content-Length - FREE_BYTES)`` bodies
  are admitted (the ones answered 408), the others refused with 503 before
  any of their body is read;
- every stalled connection is answered 503 or 408 (no 408 before
  ``body_timeout``) and closed by the receiver;
- once the last one is answered and the receiver has asked glibc to return
  freed pages (``malloc_trim(0)`` on SIGUSR1, see ``TRIMMING_MAIN``), RSS is
  within 16 MiB of rest: nothing is still referenced (a budget still held
  would be 64 MiB). Without the trim glibc keeps the freed pages for reuse;
  that figure is printed too;
- a later round's peak and trimmed RSS are within 16 MiB of the first
  round's: nothing accumulates from one burst to the next;
- the good delivery sent while the connections stall is answered 200.

And once: the chunked request is answered 413 and its connection closed,
the client managing to hand the kernel at most ``max_body_size`` more bytes
after the 413 arrived.

Prints the figures as Markdown tables; ``--json PATH`` writes them too.
Only 127.0.0.1 is ever connected to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hubsig
from hubsig._check import FREE_BYTES
from hubsig._config import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_INFLIGHT_BYTES
from hubsig.cli.serving import LISTENING
from hubsig.testing import make_events

SECRET = "stalled-clients-secret"
WRONG_SECRET = "not-the-receivers-secret"
HOST = "127.0.0.1"
MIB = 1024 * 1024
PIECE = 64 * 1024
"""Bytes handed to the kernel per send: the resolution of every byte count."""
TRIMMING_MAIN = """
import ctypes, signal, sys
libc = ctypes.CDLL("libc.so.6")
signal.signal(signal.SIGUSR1, lambda *_: libc.malloc_trim(0))
from hubsig.cli import main
sys.exit(main(sys.argv[1:]))
"""
"""``hubsig serve`` with one addition: SIGUSR1 asks glibc to return freed heap pages.

glibc keeps freed memory for reuse instead of returning it, so RSS after a
burst says what the allocator kept, not what hubsig holds; after
``malloc_trim(0)`` it says what is still referenced."""
MARGIN = 64 * MIB
SLACK = 16 * MIB
GRACE = 10.0
"""Seconds past ``body_timeout`` a connection is waited for before it counts as unanswered."""
MAX_CONNECTIONS = 2000
CHUNKED_LIMITS = 8
"""The chunked request gives up after this many times ``max_body_size``."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What one run does: the receiver's limits and the attack's size."""

    connections: int
    max_inflight_bytes: int
    body_timeout: float
    max_body_size: int
    rounds: int = 2
    margin: int = MARGIN
    slack: int = SLACK

    @property
    def declared(self) -> int:
        """The ``Content-Length`` each stalled request declares: the largest allowed but one."""
        return self.max_body_size - 1

    @property
    def expected_admitted(self) -> int:
        """How many stalled bodies fit the budget: each reserves its length past FREE_BYTES."""
        return min(self.connections, self.max_inflight_bytes // (self.declared - FREE_BYTES))

    @property
    def bound(self) -> int:
        """What the bodies may hold at most: the budget, plus each request's uncounted start."""
        return self.max_inflight_bytes + self.connections * FREE_BYTES


@dataclass(slots=True)
class Sending:
    """Bytes a sender has handed to the kernel, and how it stopped."""

    sent: int = 0
    finished: bool = False
    error: str | None = None


@dataclass(slots=True)
class Answer:
    """What the receiver did with one request, as its client saw it; seconds from its start."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    answered_after: float | None = None
    closed_after: float | None = None
    reset: bool = False
    sent_when_answered: int = 0

    @property
    def closed(self) -> bool:
        return self.closed_after is not None


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds in a thread and keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_bytes(self.pid))
                self.samples += 1
            self._stop.wait(self.interval)


def rss_bytes(pid: int) -> int:
    """The resident set size of ``pid`` in bytes, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no VmRSS for process {pid}")


def settled_rss(pid: int, seconds: float = 1.0) -> int:
    """The median of RSS samples over ``seconds``: one figure for a process at rest."""
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        samples.append(rss_bytes(pid))
        time.sleep(0.05)
    return int(statistics.median(samples))


@dataclass(frozen=True, slots=True)
class Receiver:
    """A running ``hubsig serve``: its process and where it listens on loopback."""

    process: subprocess.Popen[str]
    port: int
    path: str


@contextlib.contextmanager
def receiver(settings: Settings) -> Iterator[Receiver]:
    """``hubsig serve`` on a free loopback port with temporary files, stopped with SIGTERM."""
    with tempfile.TemporaryDirectory(prefix="hubsig-stalled-") as folder:
        base = Path(folder)
        command = [sys.executable, "-c", TRIMMING_MAIN, "serve", "--host", HOST, "--port", "0"]
        command += ["--out", str(base / "events.jsonl"), "--store", str(base / "events.db")]
        command += ["--max-inflight-bytes", str(settings.max_inflight_bytes)]
        command += ["--body-timeout", str(settings.body_timeout)]
        command += ["--max-body-size", str(settings.max_body_size)]
        environment = {**os.environ, "HUBSIG_SECRET": SECRET}
        process = subprocess.Popen(  # noqa: S603 (our own module, no shell)
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(LISTENING):
                raise RuntimeError(f"the receiver did not start (it said {line.strip()!r})")
            url = urlsplit(line[len(LISTENING) :].strip())
            if url.hostname != HOST or url.port is None:
                raise RuntimeError(f"the receiver is not on {HOST}: {url.geturl()}")
            yield Receiver(process, url.port, url.path)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def request_head(target: Receiver, headers: dict[str, str]) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"Host: {HOST}:{target.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def connect(target: Receiver) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (HOST, target.port))
    except BaseException:
        sock.close()
        raise
    return sock


async def send_pieces(sock: socket.socket, pieces: Sequence[bytes], sending: Sending) -> None:
    """Send ``pieces`` in writes of at most ``PIECE`` bytes, counting; stop at a socket error."""
    loop = asyncio.get_running_loop()
    try:
        for piece in pieces:
            view = memoryview(piece)
            for offset in range(0, len(view), PIECE):
                part = view[offset : offset + PIECE]
                await loop.sock_sendall(sock, part)
                sending.sent += len(part)
                # sock_sendall returns without yielding while the kernel takes the
                # bytes: yield, or one sender would starve every reader.
                await asyncio.sleep(0)
    except OSError as error:
        sending.error = type(error).__name__
    else:
        sending.finished = True


async def read_answer(
    sock: socket.socket, started: float, until: float, sending: Sending
) -> Answer:
    """Read until the receiver closes the connection (end of file or reset) or ``until``.

    Raw sockets rather than asyncio streams: a ``StreamReader`` that saw a
    reset raises it before handing over the bytes that came first, the answer.
    """
    loop = asyncio.get_running_loop()
    answer = Answer()
    data = bytearray()
    while (remaining := until - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), remaining)
        except TimeoutError:
            break
        except ConnectionResetError:
            answer.reset = True
            answer.closed_after = time.monotonic() - started
            break
        if not chunk:
            answer.closed_after = time.monotonic() - started
            break
        if answer.answered_after is None:
            answer.answered_after = time.monotonic() - started
            answer.sent_when_answered = sending.sent
        if len(data) < 65536:
            data += chunk
    head = bytes(data).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status_line = head[0].split(" ")
    if len(status_line) >= 2 and status_line[0].startswith("HTTP/") and status_line[1].isdigit():
        answer.status = int(status_line[1])
        for line in head[1:]:
            name, _, value = line.partition(":")
            answer.headers[name.strip().lower()] = value.strip()
    return answer


async def post(target: Receiver, body: bytes, signature: str) -> Answer:
    """One whole request on a fresh connection (``Connection: close``) and its answer."""
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
    headers |= {"Content-Length": str(len(body)), "Connection": "close"}
    sock = await connect(target)
    try:
        sending = Sending()
        started = time.monotonic()
        pieces = [request_head(target, headers), body]
        sender = asyncio.create_task(send_pieces(sock, pieces, sending))
        answer = await read_answer(sock, started, started + GRACE, sending)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        return answer
    finally:
        sock.close()


@dataclass(slots=True)
class GoodDelivery:
    """A signed delivery: its first answer and, if that was not 200, the retries."""

    first_status: int | None = None
    first_seconds: float | None = None
    first_retry_after: str | None = None
    attempts: int = 0
    status_200_after: float | None = None


async def good_delivery(target: Receiver, give_up: float) -> GoodDelivery:
    """Post a good delivery; unless it gets 200, retry as ``Retry-After`` asks until ``give_up``."""
    body = make_events(3).to_json()
    signature = hubsig.sign(body, SECRET)
    result = GoodDelivery()
    started = time.monotonic()
    while True:
        answer = await post(target, body, signature)
        result.attempts += 1
        if result.attempts == 1:
            result.first_status = answer.status
            result.first_seconds = answer.answered_after
            result.first_retry_after = answer.headers.get("retry-after")
        if answer.status == 200:
            result.status_200_after = time.monotonic() - started
            return result
        if time.monotonic() >= give_up:
            return result
        wait = answer.headers.get("retry-after", "1")
        await asyncio.sleep(float(wait) if wait.isdigit() else 1.0)


@dataclass(slots=True)
class Round:
    """One round of stalled connections: their answers, the good delivery, the receiver's RSS."""

    answers: list[Answer]
    sendings: list[Sending]
    good: GoodDelivery
    peak_rss: int
    rss_samples: int
    seconds: float
    released_rss: int = 0
    trimmed_rss: int = 0


async def stall(target: Receiver, settings: Settings) -> Round:
    """Open every stalled connection, send each body but its last byte, and wait for answers."""
    body = bytes(settings.declared - 1)
    headers = {"Content-Type": "application/json", "Content-Length": str(settings.declared)}
    headers["X-Hub-Signature"] = hubsig.sign(bytes(settings.declared), WRONG_SECRET)
    head = request_head(target, headers)
    started = time.monotonic()
    with RssSampler(target.process.pid) as sampler:
        sockets = await asyncio.gather(*(connect(target) for _ in range(settings.connections)))
        try:
            sendings = [Sending() for _ in sockets]
            begun = time.monotonic()
            until = begun + settings.body_timeout + GRACE
            pairs = list(zip(sockets, sendings, strict=True))
            senders = [asyncio.create_task(send_pieces(s, [head, body], g)) for s, g in pairs]
            readers = [asyncio.create_task(read_answer(s, begun, until, g)) for s, g in pairs]
            # Every stalled body is sent (or refused) before the good delivery goes.
            await asyncio.wait(senders, timeout=until - time.monotonic())
            good = await good_delivery(target, give_up=until)
            answers = await asyncio.gather(*readers)
            for sender in senders:
                sender.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
        finally:
            for sock in sockets:
                sock.close()
    seconds = time.monotonic() - started
    return Round(answers, sendings, good, sampler.peak, sampler.samples, seconds)


@dataclass(slots=True)
class Chunked:
    """A chunked request past ``max_body_size``: the answer, and the bytes sent around it."""

    answer: Answer
    sent: int
    sent_after_answer: int | None
    sender_stopped_by: str


async def chunked(target: Receiver, settings: Settings) -> Chunked:
    """A chunked body that keeps coming past ``max_body_size``: does the receiver stop reading?"""
    data = bytes(PIECE - 16)
    chunk = f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n"
    count = CHUNKED_LIMITS * settings.max_body_size // len(data) + 1
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    headers["X-Hub-Signature"] = hubsig.sign(data, WRONG_SECRET)
    sock = await connect(target)
    try:
        sending = Sending()
        started = time.monotonic()
        pieces = [request_head(target, headers), *([chunk] * count)]
        sender = asyncio.create_task(send_pieces(sock, pieces, sending))
        answer = await read_answer(sock, started, started + GRACE, sending)
        # A closed connection stops the sender at its next write; give it a moment.
        await asyncio.wait([sender], timeout=1.0)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    finally:
        sock.close()
    answered = answer.answered_after is not None
    after = sending.sent - answer.sent_when_answered if answered else None
    stopped_by = sending.error or ("the end of its chunks" if sending.finished else "nothing")
    return Chunked(answer, sending.sent, after, stopped_by)


def run(settings: Settings) -> dict[str, Any]:
    """Warm the receiver up, measure it at rest, run the rounds and the chunked request."""
    with receiver(settings) as target:
        pid = target.process.pid
        warm = asyncio.run(good_delivery(target, give_up=time.monotonic()))
        if warm.first_status != 200:
            raise RuntimeError(
                f"the receiver refused a good delivery at rest ({warm.first_status})"
            )
        rest = settled_rss(pid)
        rounds = []
        for _ in range(settings.rounds):
            done = asyncio.run(stall(target, settings))
            done.released_rss = settled_rss(pid)
            os.kill(pid, signal.SIGUSR1)  # the receiver's malloc_trim(0): see TRIMMING_MAIN
            done.trimmed_rss = settled_rss(pid)
            rounds.append(done)
        chunked_request = asyncio.run(chunked(target, settings))
    return figures(settings, rest, rounds, chunked_request)


def _spread(seconds: Sequence[float], scale: float) -> dict[str, float | None]:
    if not seconds:
        return {"min": None, "median": None, "max": None}
    return {
        "min": min(seconds) * scale,
        "median": statistics.median(seconds) * scale,
        "max": max(seconds) * scale,
    }


def round_figures(settings: Settings, rest: int, done: Round) -> dict[str, Any]:
    answers = done.answers
    busy = [a for a in answers if a.status == 503]
    timed_out = [a for a in answers if a.status == 408]
    good = done.good
    return {
        "peak_rss_mib": done.peak_rss / MIB,
        "peak_above_rest_mib": (done.peak_rss - rest) / MIB,
        "released_rss_mib": done.released_rss / MIB,
        "released_above_rest_mib": (done.released_rss - rest) / MIB,
        "trimmed_rss_mib": done.trimmed_rss / MIB,
        "trimmed_above_rest_mib": (done.trimmed_rss - rest) / MIB,
        "rss_samples": done.rss_samples,
        "answered_503": len(busy),
        "answered_408": len(timed_out),
        "other_answers": sorted({str(a.status) for a in answers if a.status not in (503, 408)}),
        "unanswered": sum(a.status is None for a in answers),
        "closed_by_receiver": sum(a.closed for a in answers),
        "closed_by_reset": sum(a.reset for a in answers),
        "with_connection_close": sum(a.headers.get("connection") == "close" for a in answers),
        "503_with_retry_after": sum("retry-after" in a.headers for a in busy),
        "503_ms": _spread([a.answered_after for a in busy if a.answered_after is not None], 1e3),
        "408_s": _spread([a.answered_after for a in timed_out if a.answered_after is not None], 1),
        "bodies_sent_in_full": sum(s.finished for s in done.sendings),
        "seconds": done.seconds,
        "good_first_status": good.first_status,
        "good_first_ms": None if good.first_seconds is None else good.first_seconds * 1e3,
        "good_first_retry_after": good.first_retry_after,
        "good_attempts": good.attempts,
        "good_200_after_s": good.status_200_after,
    }


def figures(
    settings: Settings, rest: int, rounds: list[Round], chunked_request: Chunked
) -> dict[str, Any]:
    answer = chunked_request.answer
    return {
        "settings": {
            "connections": settings.connections,
            "max_inflight_bytes": settings.max_inflight_bytes,
            "body_timeout_s": settings.body_timeout,
            "max_body_size": settings.max_body_size,
            "content_length": settings.declared,
            "body_bytes_sent": settings.declared - 1,
            "expected_admitted": settings.expected_admitted,
            "rounds": settings.rounds,
            "margin_mib": settings.margin / MIB,
            "slack_mib": settings.slack / MIB,
        },
        "rest_rss_mib": rest / MIB,
        "bound_rss_mib": (rest + settings.bound + settings.margin) / MIB,
        "rounds": [round_figures(settings, rest, done) for done in rounds],
        "chunked": {
            "status": answer.status,
            "answered_ms": None if answer.answered_after is None else answer.answered_after * 1e3,
            "bytes_sent_before_answer": answer.sent_when_answered,
            "bytes_sent_after_answer": chunked_request.sent_after_answer,
            "closed_by_receiver": answer.closed,
            "closed_by_reset": answer.reset,
            "connection_close": answer.headers.get("connection") == "close",
            "sender_stopped_by": chunked_request.sender_stopped_by,
        },
    }


def checks(settings: Settings, result: dict[str, Any]) -> list[tuple[str, bool]]:
    """Each check's description and whether it passed."""
    rounds, chunk = result["rounds"], result["chunked"]
    first, n = rounds[0], settings.connections
    verdicts = []
    for number, done in enumerate(rounds, start=1):
        early = done["408_s"]["min"] is not None and done["408_s"]["min"] < settings.body_timeout
        answered = done["answered_503"] + done["answered_408"] == n and not early
        verdicts += [
            (
                f"round {number}: peak RSS <= rest + budget + margin",
                done["peak_rss_mib"] <= result["bound_rss_mib"],
            ),
            (
                f"round {number}: admitted (408) == budget // counted bytes per body",
                done["answered_408"] == settings.expected_admitted,
            ),
            (f"round {number}: every connection answered 503 or 408, no 408 early", answered),
            (
                f"round {number}: every connection closed by the receiver",
                done["closed_by_receiver"] == n,
            ),
            (
                f"round {number}: RSS after release and malloc_trim <= rest + slack",
                done["trimmed_above_rest_mib"] <= settings.slack / MIB,
            ),
            (
                f"round {number}: good delivery during the stall answered 200",
                done["good_first_status"] == 200,
            ),
        ]
        if number > 1:
            reused = (
                done["peak_rss_mib"] <= first["peak_rss_mib"] + settings.slack / MIB
                and done["trimmed_rss_mib"] <= first["trimmed_rss_mib"] + settings.slack / MIB
            )
            verdicts.append((f"round {number}: peak and trimmed RSS <= round 1's + slack", reused))
    after = chunk["bytes_sent_after_answer"]
    verdicts.append(
        (
            "chunked past max_body_size: 413, closed, <= max_body_size sent after the 413",
            chunk["status"] == 413
            and chunk["closed_by_receiver"]
            and after is not None
            and after <= settings.max_body_size,
        )
    )
    return verdicts


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return " / ".join(_cell(item) for item in value.values())
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return "-" if value is None else str(value)


def _markdown(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


ROUND_ROWS = (
    ("RSS peak, MiB", "peak_rss_mib"),
    ("RSS peak above rest, MiB", "peak_above_rest_mib"),
    ("RSS after release, MiB", "released_rss_mib"),
    ("RSS after release above rest, MiB", "released_above_rest_mib"),
    ("RSS after malloc_trim, MiB", "trimmed_rss_mib"),
    ("RSS after malloc_trim above rest, MiB", "trimmed_above_rest_mib"),
    ("answered 503", "answered_503"),
    ("503 after, ms (min / median / max)", "503_ms"),
    ("503 with Retry-After", "503_with_retry_after"),
    ("answered 408", "answered_408"),
    ("408 after, s (min / median / max)", "408_s"),
    ("other answers", "other_answers"),
    ("unanswered", "unanswered"),
    ("closed by the receiver", "closed_by_receiver"),
    ("answers with Connection: close", "with_connection_close"),
    ("good delivery: first status", "good_first_status"),
    ("good delivery: first answer, ms", "good_first_ms"),
    ("good delivery: attempts", "good_attempts"),
    ("good delivery: 200 after, s", "good_200_after_s"),
)


def tables(result: dict[str, Any]) -> str:
    settings, rounds, chunk = result["settings"], result["rounds"], result["chunked"]
    overview = [
        ["figure", "value"],
        ["stalled connections per round", _cell(settings["connections"])],
        ["budget (max_inflight_bytes), MiB", _cell(settings["max_inflight_bytes"] / MIB)],
        ["body_timeout, s", _cell(settings["body_timeout_s"])],
        [
            "Content-Length / body bytes sent",
            f"{settings['content_length']} / {settings['body_bytes_sent']}",
        ],
        [
            "expected admitted (budget // (Content-Length - 64 KiB))",
            _cell(settings["expected_admitted"]),
        ],
        ["RSS at rest, MiB", _cell(result["rest_rss_mib"])],
        ["margin, MiB", _cell(settings["margin_mib"])],
        [
            "RSS bound (rest + budget + 64 KiB a connection + margin), MiB",
            _cell(result["bound_rss_mib"]),
        ],
        ["release slack, MiB", _cell(settings["slack_mib"])],
    ]
    per_round = [["stalled connections", *(f"round {n}" for n in range(1, len(rounds) + 1))]]
    per_round += [[label, *(_cell(done[key]) for done in rounds)] for label, key in ROUND_ROWS]
    chunked_rows = [
        ["chunked past max_body_size", "value"],
        ["status", _cell(chunk["status"])],
        ["answered after, ms", _cell(chunk["answered_ms"])],
        ["bytes the kernel took before the answer", _cell(chunk["bytes_sent_before_answer"])],
        ["bytes the kernel took after the answer", _cell(chunk["bytes_sent_after_answer"])],
        [
            "closed by the receiver (by reset)",
            f"{_cell(chunk['closed_by_receiver'])} ({_cell(chunk['closed_by_reset'])})",
        ],
        ["Connection: close", _cell(chunk["connection_close"])],
        ["the sender stopped at", chunk["sender_stopped_by"]],
    ]
    return "\n\n".join(_markdown(rows) for rows in (overview, per_round, chunked_rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=300, help="stalled connections (300)")
    parser.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=DEFAULT_MAX_INFLIGHT_BYTES,
        help="the receiver's budget (default: hubsig's, 64 MiB)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help="the receiver's body deadline in seconds (default: hubsig's, 10)",
    )
    parser.add_argument(
        "--max-body-size",
        type=int,
        default=DEFAULT_MAX_BODY_SIZE,
        help="the receiver's body limit in bytes (default: hubsig's, 1 MiB)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of stalled connections (2)")
    parser.add_argument(
        "--margin-mib", type=float, default=MARGIN / MIB, help="peak RSS allowed past the budget"
    )
    parser.add_argument(
        "--slack-mib", type=float, default=SLACK / MIB, help="RSS allowed past rest once released"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.connections <= MAX_CONNECTIONS:
        parser.error(f"--connections must be between 1 and {MAX_CONNECTIONS}")
    if not 1 <= arguments.rounds <= 5:
        parser.error("--rounds must be between 1 and 5")
    if not 0 < arguments.body_timeout <= 60:
        parser.error("--body-timeout must be more than 0 and at most 60 seconds")
    if arguments.max_body_size < 2:
        parser.error("--max-body-size must be at least 2")
    settings = Settings(
        connections=arguments.connections,
        max_inflight_bytes=arguments.max_inflight_bytes,
        body_timeout=arguments.body_timeout,
        max_body_size=arguments.max_body_size,
        rounds=arguments.rounds,
        margin=int(arguments.margin_mib * MIB),
        slack=int(arguments.slack_mib * MIB),
    )
    result = run(settings)
    verdicts = checks(settings, result)
    result["checks"] = [{"check": name, "passed": passed} for name, passed in verdicts]
    print(tables(result))
    print()
    for name, passed in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {name}")
    if arguments.json is not None:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
        print(f"figures written to {arguments.json}")
    return 0 if all(passed for _, passed in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
