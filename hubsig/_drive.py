"""Drivers of the delivery flow: the asyncio one and the blocking one, and the renewals.

``hubsig._flow.deliver`` decides and yields effects; these carry them out:
``drive`` on an event loop (a blocking store in a worker thread, an async
one awaited), ``drive_sync`` in blocking code (an async resolver or store
on a private loop). Both advance the flow with ``step``, as the telemetry
observer does. While a handler runs, its claims are renewed: by a timer
that becomes a task when due, or by a thread.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hubsig._check import DeliveryCheck
from hubsig._delivery import Delivery
from hubsig._flow import Effect, Flow, Handle, KeepAlive, Outcome, ReadBody, Sleep, StoreCall
from hubsig._log_text import hubsig_logger
from hubsig._receiver import Receiver
from hubsig._replies import Reply

__all__ = ["Finished", "check_store", "drive", "drive_sync", "run_to_completion", "step"]

_T = TypeVar("_T")

logger = hubsig_logger("hubsig")


class Finished:
    """What ``step`` returns once the flow has ended: its ``Reply``, or ``None``."""

    __slots__ = ("reply",)

    def __init__(self, reply: Reply | None) -> None:
        self.reply = reply


def step(flow: Flow, value: Any, error: BaseException | None) -> Effect | Finished:
    """Advance ``flow`` by one effect: send it ``value``, or throw ``error`` into it."""
    try:
        return flow.throw(error) if error is not None else flow.send(value)
    except StopIteration as stop:
        return Finished(stop.value)


async def check_store(receiver: Receiver) -> None:
    """Run an async store's or sink's ``check()`` once (raising ``ConfigurationError``
    if it fails)."""
    if receiver.checked.done:
        return
    for method, blocks in receiver.checks():
        await _store_call(StoreCall(method, (), blocks=blocks), receiver.store_blocks)
    receiver.checked.done = True


async def drive(
    flow: Flow,
    read_body: Callable[[DeliveryCheck], Awaitable[bytes]],
    handle: Callable[[Delivery], Awaitable[Outcome]],
    *,
    store_blocks: bool,
) -> Reply | None:
    """Run ``flow`` on the event loop: ``read_body`` and ``handle`` are the adapter's I/O;
    a blocking store runs in a worker thread, an async one is awaited."""
    value: Any = None
    error: BaseException | None = None
    while not isinstance(effect := step(flow, value, error), Finished):
        value, error = None, None
        try:
            if isinstance(effect, ReadBody):
                value = await read_body(effect.check)
            elif isinstance(effect, StoreCall):
                if effect.keep_alive is None:
                    value = await _store_call(effect, store_blocks, shielded=True)
                    continue
                renewing = _Renewal(effect.keep_alive, store_blocks)
                try:  # a sink's publish: the claims are kept while it waits for the engine
                    value = await _store_call(effect, store_blocks, shielded=True)
                finally:
                    renewing.stop()
            elif isinstance(effect, Handle):
                keeping = effect.keep_alive
                renewal = _Renewal(keeping, store_blocks) if keeping is not None else None
                try:
                    value = await handle(effect.delivery)
                finally:
                    if renewal is not None:
                        renewal.stop()
            elif isinstance(effect, Sleep):
                await asyncio.sleep(effect.seconds)
            else:
                value = await effect.awaitable
        except BaseException as raised:  # thrown into the flow, which decides
            error = raised
    return effect.reply


class _Renewal:
    """Renews a handler's claims every ``keep_alive.every`` seconds while it runs.

    Most handlers finish long before the first renewal is due, so only a timer
    is set for it; the renewing task starts when that timer fires (a timer
    costs a fraction of a task, and every fresh delivery sets one).
    """

    __slots__ = ("_keep_alive", "_store_blocks", "_task", "_timer")

    def __init__(self, keep_alive: KeepAlive, store_blocks: bool) -> None:
        self._keep_alive = keep_alive
        self._store_blocks = store_blocks
        self._task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(keep_alive.every, self._start)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            _renew(self._keep_alive, self._store_blocks)
        )

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


async def _renew(keep_alive: KeepAlive, store_blocks: bool) -> None:
    """Renew the claims now and then every ``keep_alive.every`` seconds until cancelled,
    saying so when a handler outlasts several leases."""
    call = StoreCall(keep_alive.renew, keep_alive.arguments)
    for renewals in itertools.count(1):
        try:
            await _store_call(call, store_blocks)
        except Exception:
            logger.warning("could not renew claims; they may expire while the handler runs")
        _note_slow_handler(renewals)
        await asyncio.sleep(keep_alive.every)


def _note_slow_handler(renewals: int) -> None:
    if renewals % SLOW_HANDLER_RENEWALS == 0:
        logger.warning(
            "a handler is still running after %d leases: its claims are kept alive",
            renewals // 3,
        )


SLOW_HANDLER_RENEWALS = 9
"""Renewals (three a lease) after which, and every so many after, a slow handler is logged."""


async def _store_call(effect: StoreCall, store_blocks: bool, *, shielded: bool = False) -> Any:
    """Carry out a store call; ``shielded``, one that started finishes even if the request is
    cancelled meanwhile (a release cut short would hold claims for a lease). A call that never
    waits (an in-memory store) is made right here, with no thread and no task."""
    blocks = store_blocks if effect.blocks is None else effect.blocks
    if blocks and not effect.inline:
        call = asyncio.to_thread(effect.method, *effect.arguments)
        return await (asyncio.shield(call) if shielded else call)
    value = effect.method(*effect.arguments)
    if not _awaitable(value):
        return value
    return await (asyncio.shield(value) if shielded else value)


def _renew_sync(keep_alive: KeepAlive, stop: threading.Event) -> None:
    renewals = 0
    while not stop.wait(keep_alive.every):
        renewals += 1
        try:
            value = keep_alive.renew(*keep_alive.arguments)
            if inspect.isawaitable(value):
                run_to_completion(value)
        except Exception:
            logger.warning("could not renew claims; they may expire while the handler runs")
        _note_slow_handler(renewals)


def drive_sync(
    flow: Flow,
    read_body: Callable[[DeliveryCheck], bytes],
    handle: Callable[[Delivery], Outcome],
) -> Reply | None:
    """Run ``flow`` in blocking code: an async resolver or store runs on a private loop."""
    value: Any = None
    error: BaseException | None = None
    while not isinstance(effect := step(flow, value, error), Finished):
        value, error = None, None
        try:
            if isinstance(effect, StoreCall):
                value = _renewing(effect.keep_alive, _call_sync, effect)
            elif isinstance(effect, ReadBody):
                value = read_body(effect.check)
            elif isinstance(effect, Handle):
                value = _renewing(effect.keep_alive, handle, effect.delivery)
            elif isinstance(effect, Sleep):
                time.sleep(effect.seconds)
            else:
                value = run_to_completion(effect.awaitable)
        except BaseException as raised:
            error = raised
    return effect.reply


def run_to_completion(awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable`` from blocking code (WSGI) on a private event loop."""

    async def wait() -> _T:
        return await awaitable

    return asyncio.run(wait())


def _call_sync(effect: StoreCall) -> Any:
    value = effect.method(*effect.arguments)
    return run_to_completion(value) if _awaitable(value) else value


def _awaitable(value: object) -> bool:
    """``inspect.isawaitable``, with what a store answers most (a list of claims, ``None``)
    decided before its abstract-class check, which costs a few thousand instructions."""
    return value is not None and value.__class__ is not list and inspect.isawaitable(value)


def _renewing(keep_alive: KeepAlive | None, call: Callable[[Any], _T], argument: Any) -> _T:
    """``call(argument)`` in blocking code, renewing the claims from a thread meanwhile."""
    if keep_alive is None:
        return call(argument)
    done = threading.Event()
    renewer = threading.Thread(target=_renew_sync, args=(keep_alive, done), daemon=True)
    renewer.start()
    try:
        return call(argument)
    finally:
        done.set()
