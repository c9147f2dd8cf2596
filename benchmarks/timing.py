"""Interleaved timing: every candidate is measured in the same rounds, so load on a shared
machine hits them alike, and the minimum over rounds is kept (the least disturbed run)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

ROUNDS = 9
BATCH_SECONDS = 0.02


def per_call(candidates: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, float]:
    """Seconds per call for each candidate, best of ``rounds`` interleaved batches."""
    numbers = {name: _calibrate(function) for name, function in candidates.items()}
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, function in candidates.items():
            number = numbers[name]
            gc.collect()
            start = time.perf_counter()
            for _ in range(number):
                function()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def per_call_async(
    candidates: dict[str, Callable[[], Awaitable[object]]], rounds: int = ROUNDS
) -> dict[str, float]:
    """``per_call`` for coroutine functions, all run on one event loop."""

    async def run() -> dict[str, float]:
        async def batch(function: Callable[[], Awaitable[object]], number: int) -> float:
            start = time.perf_counter()
            for _ in range(number):
                await function()
            return (time.perf_counter() - start) / number

        numbers = {}
        for name, function in candidates.items():
            number = 1
            while await batch(function, number) * number < BATCH_SECONDS and number < 1 << 20:
                number *= 2
            numbers[name] = number
        best = {name: float("inf") for name in candidates}
        for _ in range(rounds):
            for name, function in candidates.items():
                gc.collect()
                best[name] = min(best[name], await batch(function, numbers[name]))
        return best

    return asyncio.run(run())


def _calibrate(function: Callable[[], object]) -> int:
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            function()
        if time.perf_counter() - start >= BATCH_SECONDS or number >= 1 << 22:
            return number
        number *= 2
