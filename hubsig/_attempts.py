"""Attempt tokens: unique across every process and every attempt, and cheap to make.

A token fences one attempt's claims from a stale worker's (see ``hubsig._dedupe``):
it must never repeat, but it is no secret, since it never leaves the store. So each
process draws a random 96-bit prefix once and counts: one ``getrandom`` call per
process, instead of one per delivery (about 4 µs each on a virtual machine). A
process that finds its pid changed (a fork, even one that ran no at-fork hooks)
draws a prefix of its own before its first token.
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["attempt_token"]


def _draw() -> tuple[int, str, itertools.count[int]]:
    return os.getpid(), secrets.token_hex(12), itertools.count()


_state = _draw()  # one tuple, so a thread reads a pid, prefix and counter that belong together


def attempt_token() -> str:
    """A token no other attempt, in this process or any other, has or will have."""
    global _state
    state = _state
    if state[0] != os.getpid():
        state = _state = _draw()
    return f"{state[1]}{next(state[2]):08x}"
