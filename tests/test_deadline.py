"""The body read's deadline: ``Deadline``, a lighter ``asyncio.timeout_at`` with its
semantics, armed only for a read that has to wait (``Started``)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest

from hubsig._body import read_body
from hubsig._deadline import Deadline, Started
from hubsig.errors import BodyTimeout, ClientDisconnected

within = Deadline  # what the body readers build around each read


async def forever() -> None:
    await asyncio.Event().wait()


def test_a_read_past_its_deadline_raises_timeout_error_and_leaves_the_task_clean() -> None:
    async def main() -> int:
        with pytest.raises(TimeoutError), within(time.monotonic() + 0.02):
            await forever()
        task = asyncio.current_task()
        assert task is not None
        await asyncio.sleep(0.03)  # the disarmed timer cancels nothing later
        return task.cancelling()

    assert asyncio.run(main()) == 0


def test_the_async_form_behaves_the_same() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with within(time.monotonic() + 0.02):
                await forever()

    asyncio.run(main())


def test_a_read_in_time_is_left_alone_and_the_timer_is_disarmed() -> None:
    async def main() -> str:
        with within(time.monotonic() + 0.05):
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the deadline: nothing may cancel this
        return "done"

    assert asyncio.run(main()) == "done"


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def reader() -> None:
        with within(time.monotonic() + 10):
            await forever()

    async def main() -> None:
        task = asyncio.create_task(reader())
        await asyncio.sleep(0.01)
        task.cancel()  # the server shuts down, the client went away
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_cancellation_racing_the_deadline_is_not_swallowed() -> None:
    """The deadline fires and, before the reader wakes, someone else cancels it too: the
    reader must see the outside cancellation, not a timeout it would answer with 408."""

    async def reader() -> None:
        with within(time.monotonic() + 0.01):
            await forever()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(reader())
        await asyncio.sleep(0)  # the reader arms its timer and waits
        loop.call_at(loop.time() + 0.02, task.cancel)  # due right after the deadline
        time.sleep(0.05)  # both are overdue when the loop next runs: deadline first
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_a_deadline_already_past_expires_at_the_first_wait() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError), within(time.monotonic() - 1):
            await forever()

    asyncio.run(main())


def test_many_reads_share_the_timer_and_each_ends_at_its_own_deadline() -> None:
    """Deadlines out of order (a later one first, then earlier ones), reads that finish in
    time among them: each late read times out close to its own deadline, no other does."""

    async def read(timeout: float, takes: float) -> tuple[str, float]:
        started = time.monotonic()
        try:
            with within(started + timeout):
                await asyncio.sleep(takes)
        except TimeoutError:
            return "timed out", time.monotonic() - started
        return "read", time.monotonic() - started

    async def main() -> list[tuple[str, float]]:
        plans = [(0.5, 10), (0.05, 10), (0.3, 0.01), (0.1, 10), (0.2, 0.05), (0.15, 10)]
        reads = []
        for timeout, takes in plans:
            reads.append(asyncio.create_task(read(timeout, takes)))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*reads))

    results = asyncio.run(main())
    outcomes = [outcome for outcome, _ in results]
    assert outcomes == ["timed out", "timed out", "read", "timed out", "read", "timed out"]
    for (timeout, _), (outcome, took) in zip(
        [(0.5, 0), (0.05, 0), (0.3, 0), (0.1, 0), (0.2, 0), (0.15, 0)], results, strict=True
    ):
        if outcome == "timed out":
            assert timeout <= took < timeout + 0.1


def test_each_event_loop_keeps_its_own_deadlines() -> None:
    async def main() -> None:
        with pytest.raises(TimeoutError), within(time.monotonic() + 0.01):
            await forever()

    for _ in range(3):  # a new loop each time, as asyncio.run makes
        asyncio.run(main())


def test_no_event_loop_is_kept_alive_by_a_deadline() -> None:
    """Test suites and TestClient make a loop per call: none may outlive its run."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        with within(time.monotonic() + 30):
            await asyncio.sleep(0)

    for _ in range(5):
        asyncio.run(main())
    gc.collect()
    assert [loop() for loop in loops] == [None] * 5


def test_the_kit_keeps_asyncios_timeout() -> None:
    """``kit.within`` is public: it stays an ``asyncio.Timeout`` (``when()``, ``expired()``)."""
    from hubsig import kit

    async def main() -> None:
        deadline = time.monotonic() + 5
        timeout = kit.within(deadline)
        assert isinstance(timeout, asyncio.Timeout)
        async with timeout:
            assert not timeout.expired()
            assert abs(timeout.when() - (asyncio.get_running_loop().time() + 5)) < 0.5  # type: ignore[operator]

    asyncio.run(main())


# ``read_body`` runs the first read up to its first wait (``Started``): a body the server
# already holds is read with no timer; a read that waits carries on under the deadline.


def _reader(pieces: list[tuple[float, bytes, bool]]) -> Any:
    """A ``next_chunk`` that gives each piece after its delay (0: at once, no wait)."""
    queue = list(pieces)

    async def next_chunk() -> tuple[bytes, bool]:
        delay, chunk, last = queue.pop(0)
        if delay:
            await asyncio.sleep(delay)
        return chunk, last

    return next_chunk


class _Fed:
    """The parts of a ``DeliveryCheck`` that ``read_body`` uses."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.fed: list[bytes] = []
        self.trace = None

    def feed(self, chunk: bytes) -> None:
        self.fed.append(chunk)

    def timed_out(self) -> Exception:
        return BodyTimeout("late")


def _read(pieces: list[tuple[float, bytes, bool]], timeout: float) -> tuple[bytes, list[bytes]]:
    check = _Fed(timeout)

    async def main() -> bytes:
        return await read_body(check, _reader(pieces))  # type: ignore[arg-type]

    return asyncio.run(main()), check.fed


def test_a_body_already_there_is_read_without_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    armed: list[float] = []  # the deadlines' timers (asyncio.sleep's own are not counted)
    call_at = asyncio.BaseEventLoop.call_at

    def counted(loop: Any, when: float, callback: Any, *arguments: Any, **options: Any) -> Any:
        if isinstance(getattr(callback, "__self__", None), Deadline):
            armed.append(when)
        return call_at(loop, when, callback, *arguments, **options)

    monkeypatch.setattr(asyncio.BaseEventLoop, "call_at", counted)
    assert _read([(0, b"whole", True)], timeout=5) == (b"whole", [b"whole"])
    assert armed == []
    assert _read([(0.01, b"late", True)], timeout=5) == (b"late", [b"late"])
    assert len(armed) == 1  # a read that waits is under the deadline


@pytest.mark.parametrize(
    "pieces",
    [
        [(10, b"a", True)],  # the first read waits past the deadline
        [(0, b"a", False), (10, b"b", True)],  # the first piece at once, the rest never
        [(0, b"a", False), (0.02, b"b", False), (10, b"c", True)],
    ],
    ids=["first-waits", "first-at-once-rest-stalls", "drip-then-stall"],
)
def test_a_body_that_does_not_arrive_in_time_times_out(
    pieces: list[tuple[float, bytes, bool]],
) -> None:
    started = time.monotonic()
    with pytest.raises(BodyTimeout):
        _read(pieces, timeout=0.1)
    assert time.monotonic() - started < 2


def test_every_piece_is_fed_in_order_whichever_waited() -> None:
    pieces = [(0, b"a", False), (0.01, b"b", False), (0, b"c", False), (0.01, b"", True)]
    assert _read(pieces, timeout=5) == (b"abc", [b"a", b"b", b"c", b""])


def test_a_started_read_passes_cancellation_and_closing_through() -> None:
    """Awaiting a ``Started`` read is awaiting the read: a cancellation reaches it (its own
    clean-up runs), and what it returns or raises after waiting comes out unchanged."""
    cleaned: list[str] = []

    async def waits(result: str) -> str:
        try:
            await asyncio.sleep(0.01)
            if result == "raise":
                raise ClientDisconnected
            return result
        finally:
            cleaned.append(result)

    async def main() -> None:
        started = Started(waits("value"))
        assert not started.done
        assert await started == "value"
        with pytest.raises(ClientDisconnected):
            await Started(waits("raise"))
        task = asyncio.create_task(_awaits(Started(waits("cancelled"))))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cleaned == ["value", "raise", "cancelled"]
    ready = Started(_at_once())
    assert ready.done
    assert ready.result == "ready"


async def _awaits(started: Started[str]) -> str:
    return await started


async def _at_once() -> str:
    return "ready"
