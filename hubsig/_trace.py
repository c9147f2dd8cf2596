"""B3 trace context: read from the delivery, kept for the request, forwarded onwards.

Follows the openzipkin b3-propagation spec (single ``b3`` header first, then
the ``X-B3-*`` headers) with one leniency the Genesys sender needs: a lone
``X-B3-TraceId`` with no span id is kept, and our side gets a fresh span id.
An invalid incoming trace never fails a delivery; it is replaced by a fresh
one and ``TraceContext.discarded`` says why.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, fields, replace

from hubsig._headers import Headers, HeaderSource

__all__ = ["TraceContext", "TraceIdFilter", "current_trace", "use_trace"]

_HEX_DIGITS = "0123456789abcdef"
_current: ContextVar[TraceContext | None] = ContextVar("hubsig_trace", default=None)
_random_bits = random.getrandbits


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace this request belongs to.

    ``trace_id`` is 16 or 32 lower-hex characters; ``span_id`` is this
    side's span (the sender's, or fresh when none came); ``sampled`` is
    ``None`` when the sender left the decision open. ``generated`` is true
    when no usable incoming trace id came, and ``discarded`` then names the
    problem with the one that did (never its value).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    sampled: bool | None = None
    debug: bool = False
    generated: bool = False
    discarded: str | None = None

    @classmethod
    def new(
        cls, sampled: bool | None = None, debug: bool = False, *, discarded: str | None = None
    ) -> TraceContext:
        """A fresh 128-bit trace with a fresh span id."""
        if cls is not TraceContext:  # a subclass may have fields of its own
            return cls(_random_id(16), _random_id(8), None, sampled, debug, True, discarded)
        return _trace(_random_id(16), _random_id(8), None, sampled, debug, True, discarded)

    @classmethod
    def from_headers(cls, headers: HeaderSource) -> TraceContext:
        """Extract the trace from request headers; never raises on header content."""
        view = Headers(headers)
        single = view.get("b3")
        discarded = None
        if single is not None:
            parsed = _from_single_header(single.strip())
            if parsed is not None:
                return parsed
            discarded = "the b3 header is not valid B3"
        multi = _from_multi_headers(view)
        if multi is not None:
            return multi
        if view.get("x-b3-traceid") is not None:
            discarded = "X-B3-TraceId is not 16 or 32 lower-hex characters, or is all zeros"
        # A sampling decision may come without ids (X-B3-Sampled: 0, or X-B3-Flags: 1 for
        # debug); the fresh trace keeps it, and passes it on.
        sampled, debug = _multi_sampling(view)
        return cls.new(sampled, debug, discarded=discarded)

    def child(self) -> TraceContext:
        """The context for an outgoing call made while handling this request."""
        return replace(self, span_id=_random_id(8), parent_span_id=self.span_id)

    def to_headers(self) -> dict[str, str]:
        """Multi-header B3 for an outgoing call: a child span of this one."""
        child = self.child()
        headers = {"X-B3-TraceId": child.trace_id, "X-B3-SpanId": child.span_id}
        if child.parent_span_id is not None:
            headers["X-B3-ParentSpanId"] = child.parent_span_id
        if child.debug:
            headers["X-B3-Flags"] = "1"
        elif child.sampled is not None:
            headers["X-B3-Sampled"] = "1" if child.sampled else "0"
        return headers


def current_trace() -> TraceContext | None:
    """The trace of the request being handled in this context, if any."""
    return _current.get()


@contextmanager
def use_trace(trace: TraceContext) -> Iterator[TraceContext]:
    """Make ``trace`` the current one for the block, and restore the previous one after."""
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


class TraceIdFilter(logging.Filter):
    """Adds ``record.trace_id`` (``"-"`` outside a request) so formats can use ``%(trace_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace = _current.get()
        record.trace_id = trace.trace_id if trace is not None else "-"
        return True


def _from_single_header(value: str) -> TraceContext | None:
    """``{trace}-{span}[-{sampling}[-{parent}]]`` or a lone sampling state."""
    parts = value.lower().split("-")
    if len(parts) == 1:
        sampling = _single_sampling(parts[0])
        return None if sampling is None else TraceContext.new(*sampling)
    if len(parts) > 4:
        return None
    trace_id, span_id = parts[0], parts[1]
    if not _valid_id(trace_id, (16, 32)) or not _valid_id(span_id, (16,)):
        return None
    sampled: bool | None = None
    debug = False
    if len(parts) >= 3:
        sampling = _single_sampling(parts[2])
        if sampling is None:
            return None
        sampled, debug = sampling
    parent = parts[3] if len(parts) == 4 else None
    if parent is not None and not _valid_id(parent, (16,)):
        return None
    return _trace(trace_id, span_id, parent, sampled, debug)


def _single_sampling(flag: str) -> tuple[bool, bool] | None:
    return {"0": (False, False), "1": (True, False), "d": (True, True)}.get(flag)


def _from_multi_headers(headers: Headers) -> TraceContext | None:
    get = headers.by_lower_name.get
    trace_id = get("x-b3-traceid")
    if trace_id is None:
        return None
    trace_id = trace_id.strip().lower()
    if not _valid_id(trace_id, (16, 32)):
        return None
    sampled, debug = _multi_sampling(headers)
    span_id = get("x-b3-spanid")
    if span_id is None:  # the Genesys sender's way: a trace id alone
        return _trace(trace_id, _random_id(8), None, sampled, debug)
    span_id = span_id.strip().lower()
    parent: str | None = (get("x-b3-parentspanid") or "").strip().lower()
    if not _valid_id(span_id, (16,)):
        span_id, parent = _random_id(8), None
    elif not _valid_id(parent or "", (16,)):
        parent = None
    return _trace(trace_id, span_id, parent, sampled, debug)


def _multi_sampling(headers: Headers) -> tuple[bool | None, bool]:
    """``(sampled, debug)`` from ``X-B3-Flags`` and ``X-B3-Sampled``; debug implies sampled."""
    get = headers.by_lower_name.get
    flags = get("x-b3-flags")
    sampled = get("x-b3-sampled")
    if flags is None and sampled is None:
        return None, False
    debug = (flags or "").strip() == "1"
    return (True if debug else _SAMPLED.get((sampled or "").strip().lower())), debug


_SAMPLED = {"1": True, "true": True, "0": False, "false": False}


def _valid_id(value: str, lengths: tuple[int, ...]) -> bool:
    # strip() of every hex digit empties a string only if it holds nothing else.
    return len(value) in lengths and not value.strip(_HEX_DIGITS) and value.strip("0") != ""


(
    _set_trace_id,
    _set_span_id,
    _set_parent_span_id,
    _set_sampled,
    _set_debug,
    _set_generated,
    _set_discarded,
) = (getattr(TraceContext, field.name).__set__ for field in fields(TraceContext))
_new = object.__new__


def _trace(
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    sampled: bool | None,
    debug: bool,
    generated: bool = False,
    discarded: str | None = None,
) -> TraceContext:
    """``TraceContext(...)``, every field in order, made as the generated ``__init__`` makes
    it but through the slots directly: a frozen dataclass's ``__init__`` sets each field with
    ``object.__setattr__``, and every request makes one."""
    made: TraceContext = _new(TraceContext)
    _set_trace_id(made, trace_id)
    _set_span_id(made, span_id)
    _set_parent_span_id(made, parent_span_id)
    _set_sampled(made, sampled)
    _set_debug(made, debug)
    _set_generated(made, generated)
    _set_discarded(made, discarded)
    return made


def _random_id(size: int) -> str:
    """A non-zero id of ``size`` bytes in lower hex. B3 ids need to be unique, not secret,
    so the fast Mersenne Twister serves; hubsig never derives anything secret from them."""
    while True:
        value = _random_bits(8 * size)
        if value:
            return f"{value:0{2 * size}x}"


def set_current(trace: TraceContext) -> Token[TraceContext | None]:
    """Make ``trace`` current; pass the token to ``reset_current`` when the request ends."""
    return _current.set(trace)


def reset_current(token: Token[TraceContext | None]) -> None:
    """Restore the trace that was current before ``set_current``."""
    _current.reset(token)
