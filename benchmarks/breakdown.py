"""Where hubsig's work goes on one delivery: ``python -m benchmarks.breakdown [--root DIR]``.

Counts the instructions of each part of the ASGI door (``hubsig.kit.asgi.serve``
with the default in-memory store) on the benchmarks' 4 KiB delivery (18 events,
``X-B3-TraceId`` set, the whole body in one message), every delivery a repeat
of one already processed, as in ``benchmarks.receivers``: each part alone,
under ``valgrind --tool=callgrind``, 100 and 600 calls, the difference divided
by 500, with the collector off so that a collection landing in one run and not
the other cannot skew it. What the parts do not add up to is the flow's own
plumbing (its generator, its effects, the awaits between them). The
hand-written receiver's own work (``hmac``, ``compare_digest``, ``json.loads``,
the answer's ``json.dumps``) is counted the same way. Instructions, not time:
the same on a quiet machine and a busy one, so two commits compare exactly
(``--root`` another checkout).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hmac
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.instructions import collected

SIZE = 4096
FEW, MANY = 100, 600
PARTS = {
    "head": "request head: headers, trace context, request view",
    "checks": "checks before the body: method, length, budget, signature header",
    "verify": "hashing and verifying the body",
    "parse": "parsing the events (records only when read; a repeat reads none)",
    "keys": "dedupe keys and the attempt token",
    "claim": "claiming in the in-memory store",
    "admission": "deciding from the claims (admission)",
    "acknowledge": "the acknowledgement: its ids and JSON body",
    "send": "sending the answer (two ASGI messages)",
    "deadline": "the body deadline (a timer only for a read that waits)",
}
WHOLE = "door"
HAND = "hand"


def _calls() -> dict[str, Callable[[], Any]]:
    """Each part as a call that does it once (async ones return an awaitable)."""
    import hubsig
    from benchmarks.bodies import SECRET, events_body
    from hubsig._attempts import attempt_token
    from hubsig._check import DeliveryCheck
    from hubsig._deadline import Deadline

    try:
        from hubsig._deadline import Started
    except ImportError:  # an older checkout (--root): one timer for every read
        Started = None  # noqa: N806
    from hubsig._dedupe import Claim, admission, unique_keys
    from hubsig._headers import Headers
    from hubsig._receiver import Receiver
    from hubsig._trace import TraceContext
    from hubsig.kit import Outcome, config_from
    from hubsig.kit.asgi import request_view, send_reply, serve

    body = events_body(SIZE)
    signature = hubsig.sign(body, SECRET)
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-hub-signature", signature.encode()),
        (b"x-b3-traceid", b"463ac35c9f6413ad48485a3953bb6124"),
    ]
    scope = {"type": "http", "method": "POST", "path": "/hook", "root_path": "", "headers": raw}
    receiver = Receiver.of(config_from(None, {"secret": SECRET}, "benchmarks.breakdown"))
    headers = Headers(raw)
    trace = TraceContext.from_headers(headers)
    view = request_view(scope, headers)

    def checked() -> DeliveryCheck:
        check = DeliveryCheck(receiver, view, trace, time.monotonic())
        check.use_secrets(check.resolve())
        return check

    parse, keys_of, acknowledge = _flow_parts()
    first = checked()
    first.feed(body)
    delivery = first.finish(body)
    first.release()
    parsed = parse(body)
    keys = keys_of(parsed, body)
    store = receiver.store
    assert store is not None
    store.claim(keys, 60.0, "first")
    store.complete(keys, 3600.0, "first")  # processed: every later claim finds them done
    claims = store.claim(keys, 60.0, "again")
    assert all(claim is Claim.DONE for claim in claims), "a repeat's path is measured"
    reply = acknowledge(parsed, delivery)
    message = {"type": "http.request", "body": body, "more_body": False}

    def verified() -> None:  # a check's hashing and verifying, less the check (subtracted)
        check = checked()
        check.feed(body)
        check._started().verify()
        check.release()

    async def sent(message: Any) -> None:
        return None

    async def receive() -> Any:
        return message

    async def handle(delivery: Any, traced: Any) -> Outcome:
        raise AssertionError("a repeat never reaches the app")

    async def deadline() -> None:
        if Started is not None:  # a timer only for a read that waits: this one does not
            Started(receive())
            return
        with Deadline(time.monotonic() + 10):
            pass

    key = SECRET if isinstance(SECRET, bytes) else SECRET.encode()
    ids = [event["entity"]["id"] for event in json.loads(body)["data"]["entities"]]
    answer = {"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": i} for i in ids]}}

    def hand() -> None:
        hmac.compare_digest("sha1=" + hmac.new(key, body, "sha1").hexdigest(), signature)
        json.loads(body)
        json.dumps(answer).encode()

    return {
        "head": lambda: TraceContext.from_headers(request_view(scope, Headers(raw)).headers),
        "checks": checked,
        "verify": verified,
        "parse": lambda: parse(body),
        "keys": lambda: (unique_keys(keys_of(parsed, body)), attempt_token()),
        "claim": lambda: store.claim(keys, 60.0, "again"),
        "admission": lambda: admission(parsed, keys, claims, keys),
        "acknowledge": lambda: acknowledge(parsed, delivery),
        "send": lambda: send_reply(sent, reply),
        "deadline": deadline,
        WHOLE: lambda: serve(receiver, scope, receive, sent, handle),
        HAND: hand,
    }


def _flow_parts() -> tuple[Any, Any, Any]:
    """How the flow parses, keys and acknowledges, in this checkout or an older one
    (``--root``), which built every record and keyed and acknowledged from them."""
    try:
        from hubsig._payload import parse
        from hubsig._replies import acknowledged
    except ImportError:
        from hubsig._dedupe import event_keys
        from hubsig._payload import parse_events
        from hubsig._replies import acknowledge as acknowledge_delivery

        return (
            parse_events,
            event_keys,
            lambda payload, delivery: acknowledge_delivery(None, delivery),
        )
    return (
        parse,
        lambda parsed, body: parsed.keys(body),
        lambda parsed, delivery: acknowledged(
            parsed.entity_ids, delivery.trace, plain_ids=parsed.plain_ids
        ),
    )


def run(part: str, count: int) -> None:
    """The measured work: ``count`` calls of ``part``, the collector off."""
    call = _calls()[part]
    gc.collect()
    gc.freeze()
    gc.disable()
    if not asyncio.iscoroutine(probe := call()):
        for _ in range(count):
            call()
        return
    probe.close()

    async def calls() -> None:
        awaited: Callable[[], Awaitable[Any]] = call
        for _ in range(count):
            await awaited()

    asyncio.run(calls())


def instructions(root: Path, part: str) -> int:
    """Instructions per call of ``part`` in the checkout at ``root``."""
    few, many = (
        collected(root, "benchmarks.breakdown", "--run", part, str(n)) for n in (FEW, MANY)
    )
    return (many - few) // (MANY - FEW)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout to measure")
    options.add_argument("--run", nargs=2, metavar=("PART", "COUNT"), help=argparse.SUPPRESS)
    arguments = options.parse_args()
    if arguments.run:
        sys.path.insert(0, os.getcwd())
        run(arguments.run[0], int(arguments.run[1]))
        return
    found = {part: instructions(arguments.root, part) for part in (*PARTS, WHOLE, HAND)}
    alone = {part: found[part] - (found["checks"] if part == "verify" else 0) for part in PARTS}
    print("| part | instructions per delivery |\n|---|---|")
    for part, label in PARTS.items():
        print(f"| {label} | {alone[part]:,} |")
    plumbing = found[WHOLE] - sum(alone.values())
    print(f"| the flow's plumbing (the rest) | {plumbing:,} |")
    print(f"| **the whole door, a repeat** | **{found[WHOLE]:,}** |")
    print(f"| the hand-written receiver's own work | {found[HAND]:,} |")


if __name__ == "__main__":
    main()
