"""The in-flight body budget: a hard bound, nothing taken by a refusal, everything given back."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from hubsig._budget import BodyBudget


def test_a_new_budget_holds_nothing_and_fits_exactly_its_limit() -> None:
    budget = BodyBudget(100)
    assert (budget.used, budget.limit) == (0, 100)
    assert budget.reserve(100)
    assert budget.used == 100
    assert not budget.reserve(1)
    assert budget.used == 100
    budget.release(100)
    assert budget.used == 0
    assert repr(budget) == "BodyBudget(used=0, limit=100)"


def test_a_refused_reservation_takes_nothing() -> None:
    budget = BodyBudget(10)
    assert budget.reserve(6)
    assert not budget.reserve(5)
    assert budget.used == 6
    assert budget.reserve(4)
    assert budget.used == 10


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=30))
def test_used_is_what_was_reserved_and_not_released_never_past_the_limit(
    steps: list[tuple[bool, int]],
) -> None:
    budget = BodyBudget(100)
    held: list[int] = []
    for reserve, size in steps:
        if reserve:
            fits = sum(held) + size <= 100
            assert budget.reserve(size) is fits
            if fits:
                held.append(size)
        elif held:
            budget.release(held.pop())
        assert budget.used == sum(held) <= budget.limit
    for size in held:
        budget.release(size)
    assert budget.used == 0


def test_threads_racing_for_the_budget_never_exceed_it() -> None:
    budget = BodyBudget(1000)
    peak = 0
    lock = threading.Lock()
    start = threading.Barrier(8)

    def reader() -> None:
        nonlocal peak
        start.wait()
        for _ in range(2000):
            if budget.reserve(300):
                with lock:
                    peak = max(peak, budget.used)
                budget.release(300)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 1000
    assert budget.used == 0
