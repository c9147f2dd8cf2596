"""What a sink is: where a receiver hands verified events instead of running a handler.

A sink publishes a delivery's fresh events to a distributed engine (a
stream, a broker) and returns only once the engine has confirmed them
durable; the receiver then completes the events' claims and answers 200.
Any exception means "not durable": the claims are released and the sender
is told to retry (503 with ``Retry-After``). The engines live in
``hubsig.sinks``; the flow knows only this shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Publishes fresh events durably. ``blocking`` says its calls wait on I/O (async
    adapters run them in a thread); ``False`` means they return awaitables."""

    blocking: bool

    def check(self) -> Any:
        """Raise ``ConfigurationError`` (or return an awaitable that does) when the engine
        can never take events: unreachable, no such stream, no right to publish."""

    def publish(self, delivery: Delivery) -> Any:
        """Publish ``delivery.payload``'s events (the fresh ones); return (or resolve)
        only once the engine has confirmed them all durable, raise otherwise: a
        ``WebhookError`` (such as ``BodyTooLarge``) when the engine can never take them,
        anything else when it may later (the sender is asked to retry)."""
