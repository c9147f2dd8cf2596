"""``OnceGate``: claim a delivery's events before processing, settle the claims after.

The one place where a ``DeliveryStore`` is driven, for the ``@webhook``
endpoint and (opt-in) the middlewares, over sync or async stores alike.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hubsig.config import WebhookConfig, run_to_completion
from hubsig.dedupe import (
    Admission,
    AnyStore,
    Claim,
    DedupePolicy,
    admission,
    event_keys,
    unique_keys,
)
from hubsig.receiver import Delivery

__all__ = ["OnceGate"]

logger = logging.getLogger("hubsig")
_T = TypeVar("_T")


class OnceGate:
    """Admits each event of a delivery at most once across retries, duplicates and replays.

    ``admit`` claims the events; its ``Admission`` says which are new
    (``fresh``), whether all were seen (``fresh is None``), or whether another
    worker holds one (``busy``: its own claims are given back at once).
    """

    def __init__(self, store: AnyStore, policy: DedupePolicy | None = None) -> None:
        self.store = store
        self.policy = policy or DedupePolicy()
        # A synchronous store that waits on a disk or a network is called from a
        # worker thread in async code, so it never stalls the event loop.
        self._in_thread = bool(getattr(store, "blocking", False))

    @classmethod
    def for_config(cls, config: WebhookConfig) -> OnceGate | None:
        """The middlewares' gate: only when the configuration names a store."""
        return cls(config.store, config.dedupe) if config.store is not None else None

    async def _call(self, method: Callable[..., Any], *arguments: Any) -> Any:
        if self._in_thread:
            return await asyncio.to_thread(method, *arguments)
        return await _awaited(method(*arguments))

    async def admit(self, delivery: Delivery) -> Admission:
        """Claim every event; raises ``StoreUnavailable`` if the store cannot answer."""
        keys = event_keys(delivery.payload, delivery.body)
        claims: list[Claim] = await self._call(
            self.store.claim, unique_keys(keys), self.policy.lease
        )
        admitted = admission(delivery.payload, keys, claims)
        if admitted.busy:
            # Give back what this worker did claim, so the sender's retry can take it.
            await self.settle(admitted, succeeded=False)
            return Admission(None, (), busy=True)
        return admitted

    def admit_sync(self, delivery: Delivery) -> Admission:
        keys = event_keys(delivery.payload, delivery.body)
        claims: list[Claim] = _completed(self.store.claim(unique_keys(keys), self.policy.lease))
        admitted = admission(delivery.payload, keys, claims)
        if admitted.busy:
            self.settle_sync(admitted, succeeded=False)
            return Admission(None, (), busy=True)
        return admitted

    async def settle(self, admitted: Admission, succeeded: bool) -> None:
        """Complete the claims after success; release them after failure (so a retry runs).

        Raises ``StoreUnavailable`` only when completing fails; a failed release
        is logged, since the claims expire with their lease anyway.
        """
        if not admitted.keys:
            return
        if succeeded:
            await self._call(self.store.complete, admitted.keys, self.policy.retention)
            return
        try:
            await self._call(self.store.release, admitted.keys)
        except Exception:
            logger.warning("could not release claims; they expire with their lease")

    def settle_sync(self, admitted: Admission, succeeded: bool) -> None:
        if not admitted.keys:
            return
        if succeeded:
            _completed(self.store.complete(admitted.keys, self.policy.retention))
            return
        try:
            _completed(self.store.release(admitted.keys))
        except Exception:
            logger.warning("could not release claims; they expire with their lease")


async def _awaited(value: Awaitable[_T] | _T) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value


def _completed(value: Awaitable[_T] | _T) -> _T:
    if inspect.isawaitable(value):
        result: _T = run_to_completion(value)
        return result
    return value
