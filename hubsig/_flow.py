"""The delivery flow: every decision from a request's head to its answer, and no I/O.

``deliver`` is a generator. It checks the request, then *yields an effect*
each time it needs the outside world: ``Await`` a secret resolver's answer,
``ReadBody`` (the adapter reads the body, feeding each chunk to the check),
``StoreCall`` (claim, complete or release events), and ``Handle`` (run the
app or the handler on the verified delivery and say how it went). It
returns the ``Reply`` to send, or ``None`` when the app has answered itself.

The module imports no asyncio, no threading and no clock: ``hubsig._drive``
carries out the effects (``drive`` with asyncio, ``drive_sync`` for WSGI
and other blocking code), the one bridge between sync and async stores,
resolvers and handlers. An adapter is then only I/O: it builds the request
view, reads the body its protocol's way, runs the app, and sends the reply.

The effects are made per step of every request and only read after: named
tuples, immutable as frozen dataclasses are and built in a fifth of the time.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeAlias

from hubsig import _telemetry
from hubsig._attempts import attempt_token
from hubsig._check import DeliveryCheck
from hubsig._config import RequestView
from hubsig._dedupe import (
    AnyStore,
    Claim,
    ClaimLost,
    Claims,
    admission,
    unique_keys,
)
from hubsig._delivery import Delivery
from hubsig._log_text import hubsig_logger
from hubsig._parsed import ParsedEvents
from hubsig._receiver import Receiver
from hubsig._replies import (
    Reply,
    acknowledge,
    acknowledged,
    failure,
    in_progress,
    rejection,
    unavailable,
)
from hubsig._sink import Sink
from hubsig._trace import TraceContext
from hubsig._verifier import Verification, Verifier
from hubsig.errors import ClientDisconnected, ConfigurationError, ReceiveFailed, WebhookError

__all__ = [
    "Await",
    "ClientDisconnected",
    "Effect",
    "Flow",
    "Handle",
    "KeepAlive",
    "Outcome",
    "ReadBody",
    "Sleep",
    "StoreCall",
    "answered",
    "deliver",
    "succeeded",
]

logger = hubsig_logger("hubsig")


class Await(NamedTuple):
    """Effect: wait for a secret resolver's answer; send back its value."""

    awaitable: Awaitable[Any]


class ReadBody(NamedTuple):
    """Effect: read the whole body, passing each chunk to ``check.feed``; send back the bytes.

    Raise ``ClientDisconnected`` if the client goes away, or the check's
    ``timed_out()`` error once ``check.deadline`` passes.
    """

    check: DeliveryCheck


class StoreCall(NamedTuple):
    """Effect: call a store method (``claim``, ``complete``, ``release``); send back its result.

    ``inline`` calls run on the event loop even for a blocking store: ending a
    transaction that holds SQLite's one write lock must never wait for a
    worker thread that may itself be waiting for that lock.
    """

    method: Callable[..., Any]
    arguments: tuple[Any, ...]
    inline: bool = False
    blocks: bool | None = None
    """Whether this call waits on I/O; ``None``: as the receiver's store does."""
    keep_alive: KeepAlive | None = None
    """Renew the delivery's claims while the call runs (a sink's publish)."""


class Sleep(NamedTuple):
    """Effect: wait ``seconds`` (between tries of a store call); send back nothing."""

    seconds: float


COMPLETION_RETRIES = (0.05, 0.2, 0.5)
"""Pauses between tries of recording a handled delivery before acknowledging it anyway."""


class KeepAlive(NamedTuple):
    """Renew the delivery's claims every ``every`` seconds while its handler runs, so a
    handler slower than the lease keeps them; ``renew`` is ``store.renew`` with ``arguments``."""

    renew: Callable[..., Any]
    arguments: tuple[Any, ...]
    every: float


class Handle(NamedTuple):
    """Effect: run the app or handler on ``delivery``; send back an ``Outcome``.

    With ``keep_alive``, renew the claims while it runs. An exception raised
    instead is thrown into the flow, which gives the claims back and re-raises it.
    """

    delivery: Delivery
    keep_alive: KeepAlive | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How handling went: ``succeeded`` settles the claims (complete, else release);
    ``reply`` is the answer to send, or ``None`` when the app has sent its own;
    ``acknowledge`` asks the flow to answer 200 with every entity id of the
    delivery as it arrived (repeats included), once the claims are settled;
    ``status`` is the HTTP status the app answered itself, for telemetry."""

    succeeded: bool
    reply: Reply | None = None
    acknowledge: bool = False
    status: int | None = None


def answered(status: int) -> Outcome:
    """The outcome of an app that answered ``status`` itself: ``succeeded`` for a 2xx.

    Outcomes are immutable, so one per status is shared by every request.
    """
    outcome = _ANSWERED.get(status)
    if outcome is None:
        outcome = Outcome(succeeded(status), status=status)
        if 100 <= status <= 599:
            _ANSWERED[status] = outcome
    return outcome


_ANSWERED: dict[int, Outcome] = {}
_PUBLISHED = Outcome(True, acknowledge=True)


def succeeded(status: int) -> bool:
    """Whether an app's HTTP status means it processed the delivery: any 2xx.

    A 2xx completes the delivery's claims, so its replay is acknowledged
    without reaching the app again; anything else releases them, so the
    sender's retry is processed.
    """
    return 200 <= status < 300


Effect: TypeAlias = "Await | ReadBody | StoreCall | Handle | Sleep"
Flow: TypeAlias = Generator[Effect, Any, "Reply | None"]


def deliver(receiver: Receiver, request: RequestView, trace: TraceContext, now: float) -> Flow:
    """The whole policy for one request on a guarded path (see the module's docstring);
    ``now`` is when it arrived, on the clock its body deadline is kept on
    (``time.monotonic()``)."""
    flow = _deliver(receiver, request, trace, now)
    observer = _telemetry.observer
    if observer is not None:  # hubsig.otel.instrument() was called
        flow = observer.observe(flow, request, trace)
    if request.method == "HEAD":
        flow = _without_body(flow)
    return flow


def _without_body(flow: Flow) -> Flow:
    """A HEAD answer has no body (its length is kept)."""
    reply = yield from flow
    return None if reply is None else replace(reply, body=b"")


def _deliver(receiver: Receiver, request: RequestView, trace: TraceContext, now: float) -> Flow:
    config = receiver.config
    check: DeliveryCheck | None = None
    try:
        check = DeliveryCheck(receiver, request, trace, now)
        resolved = check.resolve()
        if resolved.__class__ is not Verifier and inspect.isawaitable(resolved):  # static first
            resolved = yield Await(resolved)
        check.use_secrets(resolved)
        body = yield ReadBody(check)
        # Without a store every delivery reaches its handler: its records are built at once.
        verification, parsed = check.verified(body, records=receiver.store is None)
    except WebhookError as error:
        return rejection(error, trace, config.acknowledge_rejections)
    except ClientDisconnected:
        raise
    except ReceiveFailed as failed:
        logger.info(
            "the body could not be read (%s); the framework answers trace_id=%s",
            type(failed.__cause__).__name__,
            trace.trace_id,
        )
        raise
    except Exception:
        logger.exception("could not check the delivery trace_id=%s", trace.trace_id)
        return failure(trace)
    finally:
        if check is not None:
            check.release()
    if receiver.store is None:
        delivery = Delivery(parsed.payload, trace, verification, body)
        if receiver.sink is None:
            outcome: Outcome = yield Handle(delivery)
        else:
            outcome = yield from _publish(receiver, receiver.sink, delivery)
        return acknowledge(None, delivery) if outcome.acknowledge else outcome.reply
    arrived = _Arrived(parsed, trace, verification, body)
    return (yield from _once(receiver, receiver.store, arrived))


def _checked(receiver: Receiver) -> Generator[Effect, Any, None]:
    """Check the store and sink before their first use (start-up did not)."""
    for method, blocks in receiver.checks():
        yield StoreCall(method, (), blocks=blocks)
    receiver.checked.done = True


def _publish(
    receiver: Receiver, sink: Sink, delivery: Delivery, keep_alive: KeepAlive | None = None
) -> Generator[Effect, Any, Outcome]:
    """Hand the events to the sink in place of a handler: acknowledged once it has made
    them durable, 503 (claims given back, the sender retries) when it could not, and the
    refusal's own status when the sink raised a ``WebhookError`` (it can never take them:
    a retry would fail for ever)."""
    try:
        if not receiver.checked.done:
            yield from _checked(receiver)
        yield StoreCall(sink.publish, (delivery,), blocks=sink.blocking, keep_alive=keep_alive)
    except WebhookError as error:  # the sink can never take this delivery: a 4xx, no retry
        return Outcome(
            False, rejection(error, delivery.trace, receiver.config.acknowledge_rejections)
        )
    except Exception:
        logger.exception(
            "the sink did not make the events durable; asking the sender to retry trace_id=%s",
            delivery.trace.trace_id,
        )
        return Outcome(False, unavailable(delivery.trace))
    return _PUBLISHED


class _Arrived(NamedTuple):
    """A verified delivery as it arrived, before claiming decides what of it is processed."""

    parsed: ParsedEvents
    trace: TraceContext
    verification: Verification
    body: bytes


def _once(receiver: Receiver, store: AnyStore, arrived: _Arrived) -> Flow:
    """Claim every event, handle only the fresh ones, then complete or release the claims.

    A repeat is answered from the events' keys and ids: its records are never built."""
    parsed, trace, verification, body = arrived
    keys = parsed.keys(body)
    unique = unique_keys(keys)
    token = attempt_token()  # this attempt's own: fences its claims from stale workers
    try:
        if not receiver.checked.done:
            yield from _checked(receiver)
        claims = yield StoreCall(store.claim, (unique, receiver.policy.lease, token))
    except ConfigurationError as error:
        logger.error("the delivery store can never work: %s trace_id=%s", error, trace.trace_id)
        return failure(trace)
    except Exception:
        logger.exception("the delivery store failed trace_id=%s", trace.trace_id)
        return failure(trace)  # the sender retries: nothing lost, nothing doubled
    if not _one_claim_each(claims, unique):
        logger.error(
            "the delivery store answered a claim with something other than one Claim per key "
            "(%s); giving the keys back trace_id=%s",
            type(claims).__name__,
            trace.trace_id,
        )
        yield from _settle(receiver, store, unique, token, succeeded=False)
        return failure(trace)
    admitted = admission(parsed, keys, claims, unique)
    if admitted.busy:
        # Give back what this worker did claim, so the sender's retry can take it.
        yield from _settle(receiver, store, admitted.keys, token, succeeded=False)
        return in_progress(trace)
    if admitted.fresh is None:
        logger.info("duplicate delivery acknowledged trace_id=%s", trace.trace_id)
        return acknowledged(parsed.entity_ids, trace, plain_ids=parsed.plain_ids)
    lease = receiver.policy.lease
    keep_alive = KeepAlive(store.renew, (admitted.keys, lease, token), lease / 3)
    held = Claims(admitted.keys, token, admitted.redelivered, store)
    fresh = Delivery(admitted.fresh, trace, verification, body, claims=held, arrived=parsed.payload)
    try:
        if receiver.sink is None:
            outcome: Outcome = yield Handle(fresh, keep_alive)
        else:
            outcome = yield from _publish(receiver, receiver.sink, fresh, keep_alive)
    except BaseException:
        yield from _abort(store, held)
        yield from _settle(receiver, store, admitted.keys, token, succeeded=False)
        raise
    if not outcome.succeeded:
        yield from _abort(store, held)
        yield from _settle(receiver, store, admitted.keys, token, succeeded=False)
        return outcome.reply
    if held.transaction is not None:
        return (yield from _commit(receiver, store, held, arrived, outcome))
    for pause in (*COMPLETION_RETRIES, None):
        try:
            yield from _settle(receiver, store, admitted.keys, token, succeeded=True)
            break
        except Exception:
            if pause is not None:
                yield Sleep(pause)
                continue
            # The handler did its work: answering 500 now would make the sender redeliver
            # work that was done. Acknowledge; the events stay claimed until their lease
            # ends, and only a redelivery after that could process them again.
            logger.exception(
                "processed, but the store could not record it after %d tries; acknowledging "
                "anyway trace_id=%s",
                len(COMPLETION_RETRIES) + 1,
                trace.trace_id,
            )
    if outcome.acknowledge:
        return acknowledged(parsed.entity_ids, trace, plain_ids=parsed.plain_ids)
    return outcome.reply


def _commit(
    receiver: Receiver, store: AnyStore, held: Claims, arrived: _Arrived, outcome: Outcome
) -> Flow:
    """Commit the handler's transaction with its events' completion: both or neither.

    Unlike a plain completion, a failed commit cannot be acknowledged: the
    handler's writes are gone with it, so the sender must retry.
    """
    trace = arrived.trace
    try:
        commit = store.commit_transaction  # type: ignore[union-attr]
        yield StoreCall(commit, (held, receiver.policy.retention), _holds_the_lock(store))
    except ClaimLost:
        logger.warning(
            "another attempt took these events while the handler ran; its writes were rolled "
            "back trace_id=%s",
            trace.trace_id,
        )
        return in_progress(trace)
    except Exception:
        logger.exception(
            "could not commit the handler's transaction; rolled back trace_id=%s", trace.trace_id
        )
        yield from _settle(receiver, store, held.keys, held.token, succeeded=False)
        return failure(trace)
    if outcome.acknowledge:
        parsed = arrived.parsed
        return acknowledged(parsed.entity_ids, trace, plain_ids=parsed.plain_ids)
    return outcome.reply


def _abort(store: AnyStore, held: Claims) -> Generator[Effect, Any, None]:
    """Roll back the handler's transaction, if it opened one."""
    if held.transaction is None:
        return
    try:
        abort = store.abort_transaction  # type: ignore[union-attr]
        yield StoreCall(abort, (held,), _holds_the_lock(store))
    except Exception:
        logger.warning("could not roll back the handler's transaction; the database will")


def _holds_the_lock(store: AnyStore) -> bool:
    """Whether a lent transaction holds a lock every other call waits for (SQLite's)."""
    return bool(getattr(store, "lends_the_write_lock", False))


def _one_claim_each(claims: object, keys: Sequence[str]) -> bool:
    return (
        isinstance(claims, list)
        and len(claims) == len(keys)
        and all(map(isinstance, claims, itertools.repeat(Claim)))
    )


def _settle(
    receiver: Receiver, store: AnyStore, keys: Sequence[str], token: str, succeeded: bool
) -> Generator[Effect, Any, None]:
    """Complete the claims after success; release them after failure (so a retry runs).

    Only a failed completion raises: a failed release is logged, since the
    claims expire with their lease anyway.
    """
    if not keys:
        return
    if succeeded:
        yield StoreCall(store.complete, (keys, receiver.policy.retention, token))
        return
    try:
        yield StoreCall(store.release, (keys, token))
    except Exception:
        logger.warning("could not release claims; they expire with their lease")
