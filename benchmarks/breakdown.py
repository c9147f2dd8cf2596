"""Where hubsig's time goes on one delivery: ``python -m benchmarks.breakdown``.

Times each part of the ASGI door on the benchmarks' 4 KiB delivery (18
events, ``X-B3-TraceId`` set, the whole body in one message) in process,
each part alone in a loop, best of five rounds, and the whole door
(``hubsig.kit.asgi.serve`` with the default in-memory store, every delivery
after the first a repeat, as in ``benchmarks.receivers``); what the parts
do not add up to is the flow's own plumbing (its generator, its effects,
the awaits between them). The hand-written receiver's own work (``hmac``,
``compare_digest``, ``json.loads``, the answer's ``json.dumps``) is timed
the same way, for the comparison the receivers benchmark makes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

import hubsig
from benchmarks.bodies import SECRET, events_body
from hubsig._attempts import attempt_token
from hubsig._check import DeliveryCheck
from hubsig._deadline import Deadline
from hubsig._dedupe import Claim, admission, event_keys, unique_keys
from hubsig._headers import Headers
from hubsig._payload import parse_events
from hubsig._receiver import Receiver
from hubsig._replies import acknowledge
from hubsig._trace import TraceContext
from hubsig.kit import Outcome, config_from
from hubsig.kit.asgi import TracedSend, request_view, send_reply, serve

SIZE = 4096
ROUNDS = 5
CALLS = 4000


def _best(part: Callable[[], Any]) -> float:
    """µs per call of ``part``, the best of ``ROUNDS``."""
    return min(timeit.repeat(part, number=CALLS, repeat=ROUNDS)) / CALLS * 1e6


def parts() -> dict[str, float]:
    """µs per delivery of each part, the door as a whole, and the hand-written work."""
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

    def verified() -> None:
        check = checked()
        check.feed(body)
        check._started().verify()
        check.release()

    first = checked()
    first.feed(body)
    delivery = first.finish(body)
    first.release()
    keys = event_keys(delivery.payload, body)
    store = receiver.store
    assert store is not None
    store.claim(keys, 60.0, "first")
    store.complete(keys, 3600.0, "first")  # processed: every later claim finds them done
    claims = store.claim(keys, 60.0, "again")
    assert all(claim is Claim.DONE for claim in claims), "a repeat's path is measured"

    async def sent(message: Any) -> None:
        return None

    async def answered() -> None:
        await send_reply(TracedSend(sent, trace), acknowledge(None, delivery))

    async def deadline() -> None:
        with Deadline(time.monotonic() + 10):
            pass

    key = SECRET if isinstance(SECRET, bytes) else SECRET.encode()
    ids = [event["entity"]["id"] for event in json.loads(body)["data"]["entities"]]
    answer = {"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": i} for i in ids]}}
    found = {
        "request head: headers, trace, request view": _best(
            lambda: request_view(scope, h := Headers(raw)) and TraceContext.from_headers(h)
        ),
        "checks before the body (method, length, budget, signature header)": _best(checked),
        "hashing and verifying the body": _best(verified) - _best(checked),
        "parsing the events (typed records)": _best(lambda: parse_events(body)),
        "dedupe keys and attempt token": _best(
            lambda: unique_keys(event_keys(delivery.payload, body)) and attempt_token()
        ),
        "claiming in the in-memory store": _best(lambda: store.claim(keys, 60.0, "again")),
        "admission and the acknowledgement": _best(
            lambda: admission(delivery.payload, keys, claims, keys) and acknowledge(None, delivery)
        ),
        "sending the answer (ASGI messages)": _loop_best(answered),
        "the body deadline (one timer)": _loop_best(deadline),
    }
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> Any:
        return message

    async def handle(delivery: Any, traced: Any) -> Outcome:
        raise AssertionError("a repeat never reaches the app")

    async def door() -> None:
        await serve(receiver, scope, receive, sent, handle)

    whole = _loop_best(door)
    found["the flow's plumbing (the rest)"] = whole - sum(found.values())
    found["the whole door, a repeat (serve)"] = whole
    found["hand-written: hmac + compare_digest + json.loads + json.dumps"] = _best(
        lambda: (
            hmac.compare_digest("sha1=" + hmac.new(key, body, "sha1").hexdigest(), signature)
            and json.loads(body)
            and json.dumps(answer).encode()
        )
    )
    return found


def _loop_best(step: Callable[[], Any]) -> float:
    """µs per await of ``step()`` inside one task, the best of ``ROUNDS``."""

    async def rounds() -> float:
        best = float("inf")
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(CALLS):
                await step()
            best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
            await asyncio.sleep(0)  # let the loop drop the cancelled timers
        return best

    return asyncio.run(rounds())


def main() -> None:
    print("| part | µs per delivery |\n|---|---|")
    for name, micros in parts().items():
        print(f"| {name} | {micros:.1f} |")


if __name__ == "__main__":
    main()
