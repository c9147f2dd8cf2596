"""Fuzz targets for hubsig's three parsers: the signature header, B3 trace headers, the payload.

Each target takes arbitrary bytes and must either return or raise one of
hubsig's own errors; anything else escaping is a bug. Used by
``fuzz/run.py`` (atheris, bounded time) and by the test suite (a short run).
"""

from __future__ import annotations

import contextlib

import hubsig
from hubsig._trace import TraceContext

VERIFIER = hubsig.Verifier(["fuzz-secret", b"\x00\xff-bytes"])


def signature_header(data: bytes) -> None:
    """The header as bytes and as text, through the verifier's fast and full paths."""
    for header in (data, data.decode("latin-1"), data.decode("utf-8", "replace")):
        with contextlib.suppress(hubsig.WebhookError):
            VERIFIER.verify(b"body", header)
        with contextlib.suppress(hubsig.WebhookError):
            hubsig.parse_signature_header(header, "base64")


def b3_headers(data: bytes) -> None:
    """Split the input into header values for every B3 header; extraction never raises."""
    parts = data.decode("latin-1").split("\n")
    names = ["b3", "X-B3-TraceId", "X-B3-SpanId", "X-B3-ParentSpanId", "X-B3-Sampled", "X-B3-Flags"]
    trace = TraceContext.from_headers(dict(zip(names, parts, strict=False)))
    assert len(trace.trace_id) in (16, 32)
    assert len(trace.span_id) == 16


def payload(data: bytes) -> None:
    for strict in (False, True):
        with contextlib.suppress(hubsig.MalformedPayload):
            hubsig.parse_events(data, strict=strict)


TARGETS = {"signature_header": signature_header, "b3": b3_headers, "payload": payload}
