"""The in-memory store: what it keeps, what it forgets, and that it says it covers one process."""

from __future__ import annotations

import logging

import pytest

from hubsig._dedupe import Claim
from hubsig.stores import MemoryStore


def test_memory_store_forgets_the_oldest_processed_events_but_never_a_live_claim() -> None:
    store = MemoryStore(max_entries=3)
    assert store.claim(["live"], 60, "A") == [Claim.CLAIMED]
    for key in ("a", "b", "c", "d"):
        store.claim([key], 60, "A")
        store.complete([key], 3600, "A")
    assert store.claim(["a"], 60, "A") == [Claim.CLAIMED]  # the oldest processed one was forgotten
    assert store.claim(["d"], 60, "A") == [Claim.DONE]
    for number in range(200_000):  # a flood of processed events
        store.complete([f"flood-{number}"], 3600, "A")
    assert len(store) <= 3 + 2  # three remembered, and the two live claims
    assert store.claim(["live"], 60, "A") == [Claim.BUSY]  # still held by its worker


def test_the_memory_store_says_once_that_it_covers_one_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hubsig")
    store = MemoryStore()
    for key in ("a", "b", "c"):
        store.claim([key], 60, "A")
    notes = [r for r in caplog.records if "this process only" in r.getMessage()]
    assert [r.levelno for r in notes] == [logging.INFO]
