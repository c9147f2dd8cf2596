"""Processing each event once although the sender delivers at least once.

The sender retries anything but a 200, and nothing in the scheme dates a
delivery, so the same event can arrive many times: retried, duplicated by a
proxy, or replayed by whoever captured it. A ``DeliveryStore`` remembers
which events were processed. Before the handler runs, each event is
*claimed*; the claim is *completed* when the handler succeeded and
*released* when it failed (so the retry processes it), and a claim held by
a worker that died expires after its lease. The next claim of such an event
is ``RECLAIMED``: the handler sees ``delivery.redelivered`` and can check
what the crashed attempt already did.

A *transactional* store (``SQLiteStore``, the PostgreSQL stores) also lends
the handler a database transaction in which it does its own writes; the
store marks the events done in that same transaction, so a crash leaves
both or neither, and the retry finds the work exactly once.

An event's key is its entity id and event type (``STARTED:8e09…``), so a
retry, a duplicate and a replay of the same event all meet the same key
even when the sender re-sends it under a new operation id. An event
without an entity id is keyed by the operation id, a digest of the
verified body, and its position.

Every store must be able to hold every key, or a delivery it cannot store
is answered 500 on every retry and the sender retries it forever
(PostgreSQL text cannot hold NUL, and its index refuses rows of a few
kilobytes). So a key longer than ``MAX_KEY_LENGTH`` characters, or holding
NUL or a lone surrogate, is replaced by ``sha256:<hex>`` of its UTF-8 bytes
before any store sees it, the same for every store; a key that already
starts with ``sha256:`` is digested too, so a digest never meets an
ordinary key. Ordinary keys are left exactly as they are.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from hubsig._models import EventsPayload, EventType
from hubsig.errors import ClaimLost, StoreUnavailable

if TYPE_CHECKING:
    from hubsig._parsed import ParsedEvents

__all__ = [
    "Admission",
    "AsyncDeliveryStore",
    "AsyncTransactionalStore",
    "Claim",
    "ClaimLost",
    "Claims",
    "DedupePolicy",
    "DeliveryStore",
    "StoreUnavailable",
    "TransactionalStore",
    "admission",
    "event_keys",
    "holdable_key",
    "unique_keys",
]


class Claim(enum.Enum):
    """What claiming an event's key found."""

    CLAIMED = "claimed"  # new: this worker now processes it
    RECLAIMED = "reclaimed"  # an earlier claim expired unsettled (a crash): processes it again
    DONE = "done"  # already processed: skip it, acknowledge it
    BUSY = "busy"  # another worker holds a live claim: ask the sender to retry


@dataclass(frozen=True, slots=True)
class DedupePolicy:
    """How long claims and memories last, in seconds.

    ``lease`` bounds how long a claim held by a crashed worker blocks its
    event; ``retention`` is how long a processed event is remembered (make it
    longer than the sender's retry horizon).
    """

    lease: float = 60.0
    retention: float = 7 * 24 * 3600.0


@dataclass(eq=False, slots=True)
class Claims:
    """The claims one delivery attempt holds while its handler runs.

    ``keys`` and ``token`` are what ``store`` fences on; ``redelivered`` says
    an earlier attempt's claim on one of the events expired unsettled;
    ``transaction`` is the store's open transaction once the handler asked
    for one (``store.transaction(delivery)``), else ``None``.
    """

    keys: tuple[str, ...]
    token: str
    redelivered: bool = False
    store: object = field(default=None, repr=False)
    transaction: Any = field(default=None, repr=False)


@runtime_checkable
class DeliveryStore(Protocol):
    """A synchronous store; every method acts on all ``keys`` atomically per key.

    Claims are fenced: ``claim`` records ``token`` (one per delivery attempt)
    with each key it wins, and ``complete`` and ``release`` act only on keys
    that token still holds, so a worker whose lease ran out can neither
    release nor overwrite a claim another worker has taken since. ``renew``
    extends the lease of the keys ``token`` still holds, while a slow
    handler works.

    ``blocking`` says whether its calls wait on a disk or a network: async
    receivers then run them in a worker thread, so the event loop never stalls.

    A store may also define ``check()``, which every adapter calls before the
    first delivery and which raises ``ConfigurationError`` when the store can
    never work (unreachable, missing permissions, a foreign schema).
    """

    blocking: bool

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]: ...

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None: ...

    def release(self, keys: Sequence[str], token: str) -> None: ...

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None: ...


@runtime_checkable
class AsyncDeliveryStore(Protocol):
    """The same contract for event-loop code (``redis.asyncio``, say); ``blocking`` is False."""

    blocking: bool

    def claim(self, keys: Sequence[str], lease: float, token: str) -> Awaitable[list[Claim]]: ...

    def complete(self, keys: Sequence[str], retention: float, token: str) -> Awaitable[None]: ...

    def release(self, keys: Sequence[str], token: str) -> Awaitable[None]: ...

    def renew(self, keys: Sequence[str], lease: float, token: str) -> Awaitable[None]: ...


@runtime_checkable
class TransactionalStore(DeliveryStore, Protocol):
    """A store that can complete claims inside a transaction the handler wrote in.

    ``commit_transaction`` marks ``claims.keys`` done in ``claims.transaction``
    (fenced by the token) and commits, raising ``ClaimLost`` after rolling
    back if another attempt holds them; ``abort_transaction`` rolls back.
    Both give the transaction's connection back.
    """

    def commit_transaction(self, claims: Claims, retention: float) -> None: ...

    def abort_transaction(self, claims: Claims) -> None: ...


@runtime_checkable
class AsyncTransactionalStore(AsyncDeliveryStore, Protocol):
    """``TransactionalStore`` for event-loop code."""

    def commit_transaction(self, claims: Claims, retention: float) -> Awaitable[None]: ...

    def abort_transaction(self, claims: Claims) -> Awaitable[None]: ...


AnyStore: TypeAlias = "DeliveryStore | AsyncDeliveryStore"


def event_keys(payload: EventsPayload, body: bytes) -> list[str]:
    """The dedupe key of each event, in order (see the module's docstring)."""
    digest: str | None = None
    keys: list[str] = []
    append = keys.append
    for position, (kind, entity) in enumerate(payload.events):
        entity_id = entity.id if entity is not None else None
        if entity_id is not None:
            # ``_value_`` is a plain attribute; ``.value`` and hashing a member run Python code.
            prefix = kind._value_ if kind.__class__ is EventType else _kind(kind)
            append(f"{prefix}:{entity_id}")
            continue
        if digest is None:
            digest = hashlib.sha256(body).hexdigest()[:32]
        append(f"{_kind(kind)}:{payload.operation_id or '-'}:{digest}:{position}")
    return holdable_keys(keys)


def holdable_keys(keys: list[str]) -> list[str]:
    """``holdable_key`` of each key; ``keys`` itself, checked in a few C calls, in the
    common case of short ASCII keys with no NUL and no digest prefix anywhere."""
    joined = "".join(keys)
    if (
        joined.isascii()
        and "\x00" not in joined
        and DIGEST_PREFIX not in joined
        and (not keys or max(map(len, keys)) <= MAX_KEY_LENGTH)
    ):
        return keys
    return [holdable_key(key) for key in keys]


MAX_KEY_LENGTH = 256
"""The longest key, in characters, that reaches a store as it is (at most 1 KiB of UTF-8,
well inside PostgreSQL's limit on an index row, about 2.7 KB)."""

DIGEST_PREFIX = "sha256:"
"""What starts a digested key, and only a digested key."""


def holdable_key(key: str) -> str:
    """``key`` itself when every store can hold it, else ``sha256:<hex>`` of its UTF-8 bytes.

    Too long, holding NUL or a lone surrogate (which no store can encode),
    or starting with ``DIGEST_PREFIX``: digested. The checks are cheap, since
    every key of every delivery passes here.
    """
    if (
        len(key) <= MAX_KEY_LENGTH
        and "\x00" not in key
        and not key.startswith(DIGEST_PREFIX)
        and (key.isascii() or _encodable(key))
    ):
        return key
    return DIGEST_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _encodable(key: str) -> bool:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(kind: EventType | str | None) -> str:
    if kind.__class__ is EventType:
        return kind._value_
    return "-" if kind is None else str(kind)


@dataclass(slots=True, eq=False)  # made per delivery; nothing changes it
class Admission:
    """What claiming a delivery's events decided.

    ``fresh`` is the payload of only the events this worker must process (the
    whole payload when none was seen before), ``None`` when every event was
    already processed; ``busy`` means another worker is processing one of
    them right now; ``keys`` are the claims to complete or release;
    ``redelivered`` means one of them was reclaimed after a crash or timeout.
    """

    fresh: EventsPayload | None
    keys: tuple[str, ...]
    busy: bool
    redelivered: bool = False


def admission(
    events: EventsPayload | ParsedEvents,
    keys: Sequence[str],
    claims: Sequence[Claim],
    unique: Sequence[str] | None = None,
) -> Admission:
    """Decide from the claims of ``unique_keys(keys)`` (``unique``, if already made)
    which of ``events`` (one per key) are new.

    A delivery with no events is new by definition: there is nothing to repeat.
    A repeat is decided without reading the events' records, so parsed events
    whose records are built on first read (``ParsedEvents``) never build them.
    """
    if not keys:
        return Admission(_records(events), (), busy=False)
    if unique is None:
        unique = unique_keys(keys)
    if len(claims) != len(unique):
        raise ValueError("one claim per unique key is needed")
    # The common cases first, without a walk: every event new (and none repeated in the
    # delivery), or every one done. Members are compared by identity: hashing one runs
    # Python code.
    if len(unique) == len(keys) and claims.count(Claim.CLAIMED) == len(claims):
        return Admission(_records(events), tuple(unique), False)
    if claims.count(Claim.DONE) == len(claims):
        return Admission(None, (), busy=False)
    verdict = dict(zip(unique, claims, strict=True))
    claimed = tuple(key for key, claim in verdict.items() if _won(claim))
    if any(claim is Claim.BUSY for claim in claims):
        return Admission(None, claimed, busy=True)
    redelivered = any(claim is Claim.RECLAIMED for claim in claims)
    payload = _records(events)
    seen: set[str] = set()
    fresh_events = []
    for event, key in zip(payload.events, keys, strict=True):
        if _won(verdict[key]) and key not in seen:
            fresh_events.append(event)
        seen.add(key)
    if not fresh_events:
        return Admission(None, claimed, busy=False)
    if len(fresh_events) == len(payload.events):
        return Admission(payload, claimed, False, redelivered)
    fresh = EventsPayload(payload.operation_id, tuple(fresh_events))
    return Admission(fresh, claimed, False, redelivered)


def _records(events: EventsPayload | ParsedEvents) -> EventsPayload:
    return events if isinstance(events, EventsPayload) else events.payload


def _won(claim: Claim) -> bool:
    """Whether this attempt holds the claim and must process the event."""
    return claim is Claim.CLAIMED or claim is Claim.RECLAIMED


def unique_keys(keys: Sequence[str]) -> list[str]:
    """``keys`` without repeats, in order: an event repeated in one delivery is claimed once."""
    return list(dict.fromkeys(keys))
