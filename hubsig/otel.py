"""OpenTelemetry traces and metrics for every adapter (``hubsig[otel]``: ``opentelemetry-api``).

``instrument()`` makes each delivery, through any adapter, record:

- a ``SERVER`` span ``hubsig.delivery`` in the *sender's* trace: the incoming
  B3 trace id becomes its trace id, under the sender's span id (or, when the
  sender sent a trace id alone, as Genesys does, the generated one that
  ``current_trace()`` also holds), marked remote; so log lines, spans and the
  ``X-B3-TraceId`` answered back carry one id. Its attributes follow the HTTP
  server conventions where they apply (``http.request.method``, ``url.path``,
  ``http.response.status_code``, ``error.type``) and add ``hubsig.verdict``
  (accepted, duplicate, busy, refused, failed; disconnected or cancelled for
  a delivery that ended unanswered, which is no error), ``hubsig.reason``,
  ``hubsig.key_index``, ``hubsig.body.size``, ``hubsig.operation_id`` and
  ``hubsig.events``, ``hubsig.events.fresh``, ``hubsig.events.duplicate``;
- child spans ``hubsig.read_body``, ``hubsig.verify``, ``hubsig.parse``,
  ``hubsig.resolve_secret``, ``hubsig.store.<method>`` and ``hubsig.handler``;
  each runs with its span current (and ``current_trace()`` naming it), so a
  store client's, resolver's or handler's own spans and outgoing B3 headers
  nest under it; exceptions recorded;
- the metrics ``hubsig.deliveries`` (counter, by ``hubsig.verdict`` and
  ``hubsig.reason``), ``hubsig.events`` (counter, by ``hubsig.outcome``:
  processed, duplicate, busy), ``hubsig.request.body.size`` (histogram, By),
  ``hubsig.verification.duration`` and ``hubsig.handler.duration``
  (histograms, s) and ``hubsig.deliveries.active`` (up-down counter).

A sender that leaves sampling open (no ``X-B3-Sampled``) is treated as
sampling, so a parent-based sampler records it; ``X-B3-Sampled: 0`` is kept.
Without ``instrument()`` nothing is recorded and the flow is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import replace
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
    )
except ImportError as missing:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "hubsig.otel needs the OpenTelemetry API: pip install 'hubsig[otel]'"
    ) from missing

from hubsig import __version__, _telemetry
from hubsig._config import RequestView
from hubsig._dedupe import Claim
from hubsig._drive import Finished, step
from hubsig._flow import Await, Handle, Outcome, ReadBody, StoreCall
from hubsig._models import EventsPayload
from hubsig._replies import Reply
from hubsig._trace import TraceContext, reset_current, set_current
from hubsig._verifier import Verification

__all__ = ["instrument", "uninstrument"]


def instrument(
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Record spans and metrics for every delivery from now on (the global providers
    unless others are given). Calling it again replaces the providers."""
    _telemetry.observer = _Recorder(
        trace.get_tracer("hubsig", __version__, tracer_provider),
        metrics.get_meter("hubsig", __version__, meter_provider),
    )


def uninstrument() -> None:
    """Stop recording: the flow is as if ``instrument`` had never been called."""
    _telemetry.observer = None


def remote_parent(trace_context: TraceContext) -> SpanContext:
    """The sender's side of ``trace_context`` as an OpenTelemetry remote span context."""
    flags = TraceFlags(TraceFlags.DEFAULT if trace_context.sampled is False else TraceFlags.SAMPLED)
    return SpanContext(
        int(trace_context.trace_id, 16),
        int(trace_context.span_id, 16),
        is_remote=True,
        trace_flags=flags,
    )


class _Recorder:
    """The observer ``instrument`` installs: one span and a few measurements per delivery."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter) -> None:
        self._tracer = tracer
        self._deliveries = meter.create_counter(
            "hubsig.deliveries", unit="{delivery}", description="Deliveries answered, by verdict"
        )
        self._events = meter.create_counter(
            "hubsig.events", unit="{event}", description="Events by outcome"
        )
        self._body_size = meter.create_histogram(
            "hubsig.request.body.size", unit="By", description="Size of delivery bodies"
        )
        self._verification = meter.create_histogram(
            "hubsig.verification.duration", unit="s", description="Time to verify a signature"
        )
        self._handler = meter.create_histogram(
            "hubsig.handler.duration", unit="s", description="Time the handler or app took"
        )
        self._active = meter.create_up_down_counter(
            "hubsig.deliveries.active", unit="{delivery}", description="Deliveries in progress"
        )

    def observe(
        self, flow: Generator[Any, Any, Any], request: RequestView, trace_context: TraceContext
    ) -> Generator[Any, Any, Any]:
        parent = trace.set_span_in_context(NonRecordingSpan(remote_parent(trace_context)))
        span = self._tracer.start_span(
            "hubsig.delivery",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": request.method if request.method in _METHODS else "_OTHER",
                "url.path": request.path,
            },
        )
        inside = trace.set_span_in_context(span)
        state = _Delivery(trace_context)
        self._active.add(1)
        try:
            reply = yield from self._pass_through(flow, span, inside, state)
        except BaseException as error:
            verdict = _ABANDONED.get(type(error).__name__)
            if verdict is None:  # a failure of the receiver's
                verdict = "failed"
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.set_attribute("error.type", type(error).__qualname__)
            span.set_attribute("hubsig.verdict", verdict)
            reason = "exception" if verdict == "failed" else verdict
            self._deliveries.add(1, {"hubsig.verdict": verdict, "hubsig.reason": reason})
            raise
        else:
            self._settle(span, state, reply)
            return reply
        finally:
            self._active.add(-1)
            span.end()

    def failed(self, error: BaseException) -> None:
        """Record an exception a handler raised on the span current while it ran."""
        span = trace.get_current_span()
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def _pass_through(
        self, flow: Generator[Any, Any, Any], span: Any, inside: Any, state: _Delivery
    ) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            effect = step(flow, value, error)
            self._finished_check(span, inside, state)
            if isinstance(effect, Finished):
                return effect.reply
            value, error = None, None
            child = self._child(effect, inside, state)
            token = hubsig_token = None
            if child is not None and not isinstance(effect, ReadBody):
                # Current while it runs: a resolver's, a store client's or a handler's own
                # spans nest under it, and so do the B3 headers of the handler's calls.
                token = otel_context.attach(trace.set_span_in_context(child, inside))
                hubsig_token = set_current(_as_hubsig(child, state.trace))
            started = time.perf_counter()
            try:
                value = yield effect
            except BaseException as raised:  # thrown into the flow, as drive does
                error = raised
                if child is not None:
                    child.record_exception(raised)
                    child.set_status(Status(StatusCode.ERROR, type(raised).__name__))
            finally:
                if hubsig_token is not None:
                    reset_current(hubsig_token)
                if token is not None:
                    otel_context.detach(token)
                if child is not None:
                    child.end()
            self._after(effect, value, error, time.perf_counter() - started, state)

    def _child(self, effect: Any, inside: Any, state: _Delivery) -> Any:
        if isinstance(effect, ReadBody):
            effect.check.observer = _Watch(state.observed)
            return self._tracer.start_span("hubsig.read_body", context=inside)
        if isinstance(effect, StoreCall):
            name = getattr(effect.method, "__name__", "call")
            return self._tracer.start_span(f"hubsig.store.{name}", context=inside)
        if isinstance(effect, Handle):
            state.handled = effect.delivery.payload.entity_ids
            return self._tracer.start_span("hubsig.handler", context=inside)
        if isinstance(effect, Await):
            return self._tracer.start_span("hubsig.resolve_secret", context=inside)
        return None

    def _after(
        self, effect: Any, value: Any, error: BaseException | None, seconds: float, state: _Delivery
    ) -> None:
        if error is not None:
            return
        if isinstance(effect, ReadBody) and isinstance(value, bytes):
            state.body_size = len(value)
            self._body_size.record(len(value))
        elif isinstance(effect, StoreCall) and getattr(effect.method, "__name__", "") == "claim":
            if isinstance(value, list):
                state.claims = value
        elif isinstance(effect, Handle) and isinstance(value, Outcome):
            state.succeeded = value.succeeded
            state.status = value.status
            self._handler.record(seconds)

    def _finished_check(self, span: Any, inside: Any, state: _Delivery) -> None:
        """Once ``DeliveryCheck.finish`` ran: its verify and parse spans, from its timings."""
        observed = state.observed
        if state.checked or "verifying" not in observed:
            return
        offset = time.time_ns() - time.perf_counter_ns()
        if "verified" in observed:
            state.checked = True
            verify = self._tracer.start_span(
                "hubsig.verify", context=inside, start_time=observed["verifying"] + offset
            )
            verification = observed.get("verification")
            if verification is None:  # refused: the signature did not match
                verify.set_status(Status(StatusCode.ERROR, "signature refused"))
            else:
                span.set_attribute("hubsig.key_index", verification.key_index)
            verify.end(end_time=observed["verified"] + offset)
            self._verification.record((observed["verified"] - observed["verifying"]) / 1e9)
        if "parsed" in observed and "payload" in observed:
            parse = self._tracer.start_span(
                "hubsig.parse", context=inside, start_time=observed["verified"] + offset
            )
            parse.end(end_time=observed["parsed"] + offset)
            payload = observed["payload"]
            span.set_attribute("hubsig.events", len(payload.events))
            if payload.operation_id is not None:
                span.set_attribute("hubsig.operation_id", payload.operation_id)

    def _settle(self, span: Any, state: _Delivery, reply: Reply | None) -> None:
        """The delivery's verdict, on its span and in the counters."""
        if state.body_size is not None:
            span.set_attribute("hubsig.body.size", state.body_size)
        fresh, duplicate, busy = state.counts()
        verdict = _verdict(reply, state, fresh)
        reason = reply.reason if reply is not None and reply.reason else None
        span.set_attribute("hubsig.verdict", verdict)
        if reason is not None:
            span.set_attribute("hubsig.reason", reason)
        status = reply.status if reply is not None else state.status
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 500 and verdict == "failed":
                span.set_status(Status(StatusCode.ERROR, reason or str(status)))
                span.set_attribute("error.type", reason or str(status))
        span.set_attribute("hubsig.events.fresh", fresh)
        span.set_attribute("hubsig.events.duplicate", duplicate)
        attributes = {"hubsig.verdict": verdict}
        if reason is not None:
            attributes["hubsig.reason"] = reason
        self._deliveries.add(1, attributes)
        if verdict == "accepted" and fresh:
            self._events.add(fresh, {"hubsig.outcome": "processed"})
        if duplicate:
            self._events.add(duplicate, {"hubsig.outcome": "duplicate"})
        if busy:
            self._events.add(busy, {"hubsig.outcome": "busy"})


class _Watch:
    """Watches ``DeliveryCheck.finish`` from outside: when verification starts and ends,
    its result, and what was parsed, on this module's clock."""

    __slots__ = ("_observed",)

    def __init__(self, observed: dict[str, Any]) -> None:
        self._observed = observed

    def verifying(self) -> None:
        self._observed["verifying"] = time.perf_counter_ns()

    def verified(self, verification: Verification | None) -> None:
        self._observed["verified"] = time.perf_counter_ns()
        self._observed["verification"] = verification

    def parsed(self, payload: EventsPayload) -> None:
        self._observed["parsed"] = time.perf_counter_ns()
        self._observed["payload"] = payload


class _Delivery:
    """What the recorder learns of one delivery as its effects pass."""

    __slots__ = (
        "body_size",
        "checked",
        "claims",
        "handled",
        "observed",
        "status",
        "succeeded",
        "trace",
    )

    def __init__(self, trace_context: TraceContext) -> None:
        self.trace = trace_context
        self.status: int | None = None
        self.observed: dict[str, Any] = {}
        self.checked = False
        self.body_size: int | None = None
        self.claims: list[Any] | None = None
        self.handled: tuple[str, ...] | None = None
        self.succeeded: bool | None = None

    def counts(self) -> tuple[int, int, int]:
        """(fresh, duplicate, busy) events: from the claims with a store, else the payload."""
        if self.claims is not None:
            fresh = sum(claim in (Claim.CLAIMED, Claim.RECLAIMED) for claim in self.claims)
            duplicate = sum(claim is Claim.DONE for claim in self.claims)
            return fresh, duplicate, sum(claim is Claim.BUSY for claim in self.claims)
        payload = self.observed.get("payload")
        return (len(payload.events) if payload is not None else 0), 0, 0


_ABANDONED = {"ClientDisconnected": "disconnected", "CancelledError": "cancelled"}
"""Deliveries that ended without an answer, through no failure of the receiver's."""

_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def _as_hubsig(span: Any, trace_context: TraceContext) -> TraceContext:
    """``current_trace()`` while ``span`` runs: its span id, so outgoing B3 headers
    (``to_headers()``) name a span that is exported."""
    own = format(span.get_span_context().span_id, "016x")
    return replace(trace_context, span_id=own, parent_span_id=trace_context.span_id)


def _verdict(reply: Reply | None, state: _Delivery, fresh: int) -> str:
    if reply is not None and reply.reason in ("delivery_in_progress", "receiver_busy"):
        return "busy"
    if reply is not None and reply.status >= 500:
        return "failed"
    if reply is not None and reply.reason is not None:
        return "refused"
    if state.succeeded is False:
        return "failed"
    if state.handled is None and state.claims is not None and not fresh:
        return "duplicate"
    return "accepted"
