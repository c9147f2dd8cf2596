"""Does any parser take more than linear time? ``python -m fuzz.scaling``.

Times each parser on pathological inputs at a base size and at 10x that
size (long runs of the characters each parser treats specially) and prints
the ratio: about 10 means linear; a quadratic parser would show about 100.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

import hubsig
from hubsig._trace import TraceContext

VERIFIER = hubsig.Verifier("scaling-secret")


def _header(text: str) -> None:
    with contextlib.suppress(hubsig.WebhookError):
        VERIFIER.verify(b"", text)


def _payload(body: bytes) -> None:
    with contextlib.suppress(hubsig.MalformedPayload):
        hubsig.parse_events(body, strict=True)


CASES: dict[str, Callable[[int], Callable[[], None]]] = {
    "header: '=' repeated": lambda n: lambda: _header("sha1" + "=" * n),
    "header: hex digits": lambda n: lambda: _header("sha1=" + "a" * n),
    "header: spaces": lambda n: lambda: _header(" " * n + "sha1=" + "a" * 40),
    "b3: dashes": lambda n: lambda: TraceContext.from_headers({"b3": "-" * n}),
    "b3: hex": lambda n: lambda: TraceContext.from_headers({"X-B3-TraceId": "a" * n}),
    "payload: nesting": lambda n: lambda: _payload(b"[" * n + b"]" * n),
    "payload: entities": lambda n: (
        lambda: _payload(
            b'{"operationId":"o","data":{"entities":['
            + b",".join([b'{"entity":{"id":"x"}}'] * n)
            + b"]}}"
        )
    ),
    "payload: repeated keys": lambda n: lambda: _payload(b'{"a":1' + b',"a":1' * n + b"}"),
    "payload: long string": lambda n: (
        lambda: _payload(b'{"operationId":"' + b"\\u00e9" * n + b'"}')
    ),
}


def seconds(run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(base: int = 10_000) -> dict[str, float]:
    ratios = {}
    for name, make in CASES.items():
        ratios[name] = seconds(make(10 * base)) / seconds(make(base))
    return ratios


if __name__ == "__main__":
    print(json.dumps({name: round(ratio, 1) for name, ratio in main().items()}, indent=1))
