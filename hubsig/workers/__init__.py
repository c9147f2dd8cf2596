"""The worker side of a sink: each event once at the consumer, with hubsig's stores.

An engine delivers at least once: a stream entry whose consumer crashed is
claimed again, a JetStream message unacknowledged within its wait is
redelivered, a receiver that published but could not record it publishes
again after the sender's retry. ``OnceProcessor`` turns that into each event
processed once, the way a receiver does for the sender's retries: it claims
the message's ``key`` in a store, runs the handler while renewing the claim,
completes the claim (in the handler's own transaction with the SQLite and
PostgreSQL stores), and only then says the message may be acknowledged. A
crash anywhere leaves the message unacknowledged and its claim expiring, so
the engine redelivers it and the next worker finishes it once.

The engines' loops are in ``hubsig.workers.redis_streams`` (a consumer
group), ``hubsig.workers.jetstream`` (a pull consumer) and
``hubsig.workers.celery`` (a task decorator); they share this module, so the
rule is the same for all three.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hubsig import _telemetry
from hubsig._attempts import attempt_token
from hubsig._dedupe import Claim, ClaimLost, Claims, DedupePolicy, DeliveryStore
from hubsig._flow import COMPLETION_RETRIES
from hubsig._trace import TraceContext, _valid_id, use_trace
from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage

__all__ = ["ClaimedEvent", "EventHandler", "OnceProcessor", "Verdict", "trace_of"]

logger = logging.getLogger("hubsig.worker")


class Verdict(enum.Enum):
    """What became of one message; ``acknowledge`` says whether the engine may forget it."""

    PROCESSED = "processed"  # the handler ran and its completion was recorded (or tried)
    DUPLICATE = "duplicate"  # another attempt processed the event before: nothing to do
    BUSY = "busy"  # another worker is processing it now: redeliver later
    FAILED = "failed"  # the handler, the store or the commit failed: redeliver later

    @property
    def acknowledge(self) -> bool:
        return self is Verdict.PROCESSED or self is Verdict.DUPLICATE


@dataclass(eq=False, slots=True)
class ClaimedEvent:
    """An event a worker holds the claim on: what its handler gets.

    ``redelivered`` says an earlier attempt's claim expired unsettled (a worker
    crashed mid-way), so a handler whose effects are outside the store's
    transaction should check them first. ``transaction()`` lends the store's
    open transaction (SQLite and PostgreSQL stores): write in it and do not
    commit; the worker commits it with the event's completion.
    """

    message: SinkMessage
    claims: Claims = field(repr=False)

    @property
    def key(self) -> str:
        return self.message.key

    @property
    def event(self) -> dict[str, Any]:
        """The event's JSON object, as the sender signed it."""
        return self.message.event

    @property
    def operation_id(self) -> str | None:
        return self.message.operation_id

    @property
    def trace_id(self) -> str:
        return self.message.trace_id

    @property
    def redelivered(self) -> bool:
        return self.claims.redelivered

    def transaction(self) -> Any:
        """The store's connection in the transaction that will complete this event."""
        lend = getattr(self.claims.store, "transaction", None)
        if lend is None:
            raise ConfigurationError(
                f"{type(self.claims.store).__name__} lends no transaction: use SQLiteStore "
                "or PostgresStore"
            )
        return lend(self)


EventHandler = Callable[[ClaimedEvent], object]
"""A worker's handler: called with each event to process; raising means "not done"."""


def trace_of(message: SinkMessage) -> TraceContext:
    """The sender's trace, continued in a span of this worker's own (a fresh trace when the
    message's trace id is not 16 or 32 lower-hex characters: not published by hubsig)."""
    fresh = TraceContext.new()
    if not _valid_id(message.trace_id, (16, 32)):
        return replace(fresh, discarded="the message's trace_id is not a B3 trace id")
    return replace(fresh, trace_id=message.trace_id, generated=False)


class OnceProcessor:
    """Processes each message's event once with ``store``, whatever the engine redelivers.

    ``store`` must be a synchronous store (``SQLiteStore``, ``PostgresStore``,
    ``RedisStore``, ``MemoryStore`` for one process): workers call it from
    their own threads. Its ``check()`` runs here, so a store that can never
    work stops the worker at start-up. ``policy.lease`` is how long a crashed
    worker's claim blocks its event; the claim is renewed every third of it
    while the handler runs.
    """

    def __init__(
        self,
        store: DeliveryStore,
        handler: EventHandler,
        *,
        policy: DedupePolicy | None = None,
    ) -> None:
        if not isinstance(store, DeliveryStore) or inspect.iscoroutinefunction(store.claim):
            raise ConfigurationError(
                "a worker needs a synchronous store (SQLiteStore, PostgresStore, RedisStore): "
                f"{type(store).__name__} is not one"
            )
        if not callable(handler) or inspect.iscoroutinefunction(handler):
            raise ConfigurationError("a worker's handler must be a plain function (def)")
        self.store = store
        self.handler = handler
        self.policy = policy or DedupePolicy()
        check = getattr(store, "check", None)
        if check is not None:
            check()

    def process(
        self, message: SinkMessage, keep_alive: Callable[[], object] | None = None
    ) -> Verdict:
        """Claim, handle, complete: the verdict says whether to acknowledge the message.

        ``keep_alive`` is called with each renewal of the claim (to tell the
        engine the message is still being worked on). Only a ``BaseException``
        that is not an ``Exception`` (a ``KeyboardInterrupt``) propagates,
        after the claim was given back.
        """
        trace = trace_of(message)
        with use_trace(trace), _span(trace, message) as span:
            verdict = self._process(message, keep_alive)
            if span is not None:
                span.set_attribute("hubsig.verdict", verdict.value)
            return verdict

    def _process(self, message: SinkMessage, keep_alive: Callable[[], object] | None) -> Verdict:
        store, policy, key = self.store, self.policy, message.key
        token = attempt_token()
        try:
            claim = store.claim([key], policy.lease, token)[0]
        except Exception:
            logger.exception("could not claim %s; it will be redelivered", _id(message))
            return Verdict.FAILED
        if claim is Claim.DONE:
            logger.info("duplicate event acknowledged %s", _id(message))
            return Verdict.DUPLICATE
        if claim is Claim.BUSY:
            logger.info("another worker is processing %s; it will be redelivered", _id(message))
            return Verdict.BUSY
        held = Claims((key,), token, claim is Claim.RECLAIMED, store)
        renewal = _Renewal(store, held, policy.lease, keep_alive)
        try:
            self.handler(ClaimedEvent(message, held))
        except BaseException as error:
            renewal.stop()
            self._give_back(held)
            if not isinstance(error, Exception):
                raise
            logger.exception("the handler failed on %s; it will be redelivered", _id(message))
            return Verdict.FAILED
        renewal.stop()
        if held.transaction is not None:
            return self._commit(held, message)
        return self._complete(held, message)

    def _commit(self, held: Claims, message: SinkMessage) -> Verdict:
        try:
            self.store.commit_transaction(held, self.policy.retention)  # type: ignore[attr-defined]
        except ClaimLost:
            logger.warning(
                "another worker took %s while the handler ran; its writes were rolled back",
                _id(message),
            )
            return Verdict.BUSY
        except Exception:
            logger.exception(
                "could not commit the handler's transaction for %s; rolled back, it will be "
                "redelivered",
                _id(message),
            )
            self._release(held)
            return Verdict.FAILED
        return Verdict.PROCESSED

    def _complete(self, held: Claims, message: SinkMessage) -> Verdict:
        for pause in (*COMPLETION_RETRIES, None):
            try:
                self.store.complete(held.keys, self.policy.retention, held.token)
                return Verdict.PROCESSED
            except Exception:
                if pause is not None:
                    threading.Event().wait(pause)
                    continue
                # The work is done: acknowledging keeps it from running again now; the claim
                # expires with its lease, and only a redelivery after that could rerun it.
                logger.exception(
                    "processed %s, but the store could not record it after %d tries; "
                    "acknowledging anyway",
                    _id(message),
                    len(COMPLETION_RETRIES) + 1,
                )
        return Verdict.PROCESSED

    def _give_back(self, held: Claims) -> None:
        if held.transaction is not None:
            try:
                self.store.abort_transaction(held)  # type: ignore[attr-defined]
            except Exception:
                logger.warning("could not roll back the handler's transaction; the database will")
        self._release(held)

    def _release(self, held: Claims) -> None:
        try:
            self.store.release(held.keys, held.token)
        except Exception:
            logger.warning("could not release a claim; it expires with its lease")


@contextlib.contextmanager
def _span(trace: TraceContext, message: SinkMessage) -> Iterator[Any]:
    """A ``CONSUMER`` span ``hubsig.worker.event`` in the sender's trace, once
    ``hubsig.otel.instrument()`` was called (nothing otherwise); the handler's own spans
    nest under it."""
    observer = _telemetry.observer
    if observer is None:
        yield None
        return
    from opentelemetry import trace as otel

    from hubsig.otel import remote_parent

    tracer = getattr(observer, "_tracer", None) or otel.get_tracer("hubsig")
    parent = otel.set_span_in_context(otel.NonRecordingSpan(remote_parent(trace)))
    attributes = {"hubsig.key": message.key, "hubsig.operation_id": message.operation_id or ""}
    with tracer.start_as_current_span(
        "hubsig.worker.event", context=parent, kind=otel.SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def _id(message: SinkMessage) -> str:
    from hubsig._log_text import escaped

    return f"key={escaped(message.key)} trace_id={escaped(message.trace_id)}"


class _Renewal:
    """Renews one claim every third of its lease, on a timer thread of its own, until the
    handler ends; ``keep_alive`` tells the engine at each renewal too."""

    __slots__ = ("_stop", "_timer")

    def __init__(
        self,
        store: DeliveryStore,
        held: Claims,
        lease: float,
        keep_alive: Callable[[], object] | None,
    ) -> None:
        self._stop = threading.Event()
        arguments = (held.keys, lease, held.token)
        self._timer = threading.Timer(
            lease / 3, _renew, (store, arguments, lease / 3, keep_alive, self._stop)
        )
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        self._stop.set()
        self._timer.cancel()


def _renew(
    store: DeliveryStore,
    arguments: Sequence[Any],
    every: float,
    keep_alive: Callable[[], object] | None,
    stop: threading.Event,
) -> None:
    for renewals in itertools.count(1):
        if stop.is_set():
            return
        try:
            store.renew(*arguments)
            if keep_alive is not None:
                keep_alive()
        except Exception:
            logger.warning("could not renew a claim; it may expire while the handler runs")
        if renewals % 9 == 0:
            logger.warning("a handler is still running after %d leases", renewals // 3)
        if stop.wait(every):
            return
