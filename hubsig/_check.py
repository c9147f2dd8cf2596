"""Every check of one request on a guarded path, from its head to a verified ``Delivery``.

An adapter (through the flow) builds a ``DeliveryCheck`` from the request
line and headers, hands it the resolved secret, feeds it the body as it
arrives, and gets a ``Delivery`` or a ``WebhookError``. Checks run in the
cheapest order: method, API key and declared length before the body is
read, the signature header before the body is read, the signature before
the body is parsed. Nothing here reads a clock: the caller says when the
request arrived.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable
from typing import Protocol

from hubsig._config import RequestView, WebhookConfig
from hubsig._delivery import Delivery
from hubsig._headers import Headers
from hubsig._models import EventsPayload
from hubsig._parsed import ParsedEvents
from hubsig._payload import parse
from hubsig._receiver import Receiver, Resolved
from hubsig._secrets import Secrets
from hubsig._trace import TraceContext
from hubsig._verifier import IncrementalVerification, Verification
from hubsig.errors import (
    BodyTimeout,
    BodyTooLarge,
    InvalidApiKey,
    MalformedRequest,
    MalformedSignature,
    MethodNotAllowed,
    ReceiverBusy,
    TooManyEvents,
)

__all__ = ["FREE_BYTES", "CheckObserver", "DeliveryCheck", "declared_length"]

FREE_BYTES = 64 * 1024
"""The first bytes of each body, which the in-flight budget does not count."""
_MAX_LENGTH_DIGITS = 18  # far past any body limit, far short of int()'s digit limit


class CheckObserver(Protocol):
    """Watches ``finish`` from outside (``hubsig.otel``): told when verification starts
    and ends (``None`` when refused) and what was parsed; it keeps its own clock."""

    def verifying(self) -> None: ...

    def verified(self, verification: Verification | None) -> None: ...

    def parsed(self, payload: EventsPayload) -> None: ...


class DeliveryCheck:
    """One request on a guarded path, from its headers to a verified ``Delivery``.

    Building it checks, before any body is read, the method, the API key
    and the declared ``Content-Length``; ``resolve`` asks for the secrets and
    ``use_secrets`` checks the signature header against them; ``feed`` hashes
    the body and enforces the size limit; ``finish`` verifies and parses.

    The receiver's in-flight budget is charged with each body's bytes past
    its first ``FREE_BYTES``: the declared length up front (so a body that
    cannot fit is refused before any of it is read), or, for a chunked
    body, each chunk as it arrives. A small delivery (most are a few KiB)
    is never refused because large ones fill the budget; the uncounted
    first bytes are bounded by the server's connection limit, as its own
    per-connection buffers are.
    Each raises a ``WebhookError`` when the delivery must be refused.
    ``release`` gives the reserved bytes back and must be called once the
    request is over, whatever happened.
    """

    __slots__ = (
        "_config",
        "_hashing",
        "_receiver",
        "_reserved",
        "deadline",
        "declared",
        "observer",
        "request",
        "trace",
    )

    def __init__(
        self, receiver: Receiver, request: RequestView, trace: TraceContext, now: float
    ) -> None:
        config = receiver.config
        self._receiver = receiver
        self._config = config
        self.request = request
        self.trace = trace
        self._hashing: IncrementalVerification | None = None
        self._reserved = 0
        self.observer: CheckObserver | None = None
        """Set by telemetry (``hubsig.otel``) to watch ``finish``."""
        if not request.path.isprintable():
            # Routers disagree on such paths (Starlette's "$" matches before a final
            # newline); refused, never normalised into some other path.
            raise MalformedRequest("the request path holds a control character")
        check_method(config, request.method)
        check_api_key(config, request.headers)
        declared = declared_length(request.headers)
        if declared is not None and declared > config.max_body_size:
            raise BodyTooLarge(_too_large(config.max_body_size))
        self.declared = declared
        """The ``Content-Length`` the client declared, or ``None`` (``declared_length``)."""
        if declared is not None and declared > FREE_BYTES:
            self._reserve(declared - FREE_BYTES)
        self.deadline = now + config.body_timeout
        """When the body must have arrived, on the clock of ``now`` (``time.monotonic()``)."""

    def resolve(self) -> Resolved | Awaitable[Secrets | None]:
        """This request's secrets: the static ``Verifier``, or the resolver's answer
        (awaitable when the resolver is async)."""
        verifiers = self._receiver.verifiers
        static = verifiers.static
        return static if static is not None else verifiers.resolve(self.request)

    def use_secrets(self, resolved: Resolved) -> None:
        """Parse the signature header against the resolved secrets, before any body is read."""
        signatures = self.request.headers.get_all(self._config.scheme_header)
        if len(signatures) > 1:
            raise MalformedSignature("the request carries more than one signature header")
        verifier = self._receiver.verifiers.verifier_for(resolved)
        self._hashing = verifier.begin(signatures[0] if signatures else None)

    def feed(self, chunk: bytes) -> None:
        """Hash the next piece of the body; ``BodyTooLarge`` past the limit."""
        hashing = self._started()
        size = hashing.size + len(chunk)
        if size > self._config.max_body_size:
            raise BodyTooLarge(_too_large(self._config.max_body_size))
        if self.declared is None and size > FREE_BYTES:
            self._reserve(size - FREE_BYTES - self._reserved)
        hashing.update(chunk)

    def timed_out(self) -> BodyTimeout:
        """The error for a body that did not arrive before ``deadline``."""
        return BodyTimeout(f"the body did not arrive within {self._config.body_timeout:g} seconds")

    def finish(self, body: bytes) -> Delivery:
        """Verify the signature over everything fed, then parse ``body`` (the same bytes)."""
        verification, parsed = self.verified(body, records=True)
        return Delivery(parsed.payload, self.trace, verification, body)

    def verified(self, body: bytes, *, records: bool = False) -> tuple[Verification, ParsedEvents]:
        """``finish`` as the flow takes it: the events with their records built on first
        read, so a repeat never builds them (``hubsig._parsed``); ``records``, at once."""
        hashing = self._started()
        observer = self.observer
        if observer is not None:
            observer.verifying()
        try:
            verification = hashing.verify()
        except BaseException:
            if observer is not None:  # a refused signature is observed too
                observer.verified(None)
            raise
        if observer is not None:
            observer.verified(verification)
        parsed = parse(body, strict=self._config.strict, records=records)
        if observer is not None:
            observer.parsed(parsed.payload)
        if parsed.count > self._config.max_events:
            raise TooManyEvents(
                f"the delivery holds {parsed.count} events, more than this receiver's "
                f"limit of {self._config.max_events}"
            )
        return verification, parsed

    def release(self) -> None:
        """Give this request's bytes back to the in-flight budget (idempotent)."""
        if self._reserved:
            self._receiver.budget.release(self._reserved)
            self._reserved = 0

    def _reserve(self, size: int) -> None:
        if not self._receiver.budget.reserve(size):
            raise ReceiverBusy(
                "this receiver is reading as many bodies as it may hold; retry shortly",
                headers=(("retry-after", "1"),),
            )
        self._reserved += size

    def _started(self) -> IncrementalVerification:
        if self._hashing is None:
            raise RuntimeError("DeliveryCheck.use_secrets must be called before the body is fed")
        return self._hashing


def check_method(config: WebhookConfig, method: str) -> None:
    """Raise ``MethodNotAllowed`` (with ``Allow``) unless a guarded path takes ``method``."""
    if method not in config.methods:
        allowed = ", ".join(config.methods)
        message = f"this webhook accepts {allowed} only"
        raise MethodNotAllowed(message, headers=(("allow", allowed),))


def check_api_key(config: WebhookConfig, headers: Headers) -> None:
    """Raise ``InvalidApiKey`` unless api keys are off or ``x-api-key`` matches one.

    Both sides are compared as UTF-8 bytes in constant time: the header's
    bytes as they came over the wire, the keys as configured.
    """
    keys = config.api_key_bytes
    if keys is None:
        return
    received = headers.get("x-api-key")
    if received is None:
        raise InvalidApiKey("the x-api-key header is missing")
    candidate = _wire_bytes(received.strip(" \t"))
    matched = False
    for key in keys.reveal():
        matched |= hmac.compare_digest(candidate, key)
    if not matched:
        raise InvalidApiKey("the x-api-key header matches no configured key")


def _wire_bytes(value: str) -> bytes:
    """A header value's bytes: servers decode them as Latin-1, so encoding back restores them."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:  # a caller that decoded the header as UTF-8 already
        return value.encode("utf-8", "surrogatepass")


def declared_length(headers: Headers) -> int | None:
    """The ``Content-Length`` the client declared, or ``None`` if it declared none.

    Raises ``MalformedRequest`` for anything but one plain ASCII number (or
    repeats of the same number): a value such as ``²`` or 5,000 digits must
    be a 400, never a 500 or a guess.
    """
    values = headers.get_all("content-length")
    if not values:
        return None
    if len(values) == 1:
        text = values[0].strip()
    else:
        lengths = {value.strip() for value in values}
        if len(lengths) != 1:
            raise MalformedRequest("the request declares more than one Content-Length")
        (text,) = lengths
    if not (0 < len(text) <= _MAX_LENGTH_DIGITS and text.isascii() and text.isdigit()):
        raise MalformedRequest("the Content-Length header is not a number of bytes")
    return int(text)


def _too_large(limit: int) -> str:
    return f"the body is larger than this receiver's limit of {limit} bytes"
