"""``within``: the body read's deadline, a lighter ``asyncio.timeout_at`` with its semantics."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref

import pytest

from hubsig._deadline import Deadline

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
