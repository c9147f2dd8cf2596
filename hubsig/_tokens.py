"""Attempt tokens: unique across every process and every attempt, and cheap to make.

A token fences one attempt's claims from a stale worker's (see ``hubsig._dedupe``):
it must never repeat, but it is no secret, since it never leaves the store. So each
process draws a random 96-bit prefix once (again in a forked child, which would
otherwise repeat its parent's) and counts: one ``getrandom`` call per process,
instead of one per delivery (about 4 µs each on a virtual machine).
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["attempt_token"]


def _draw() -> tuple[str, itertools.count[int]]:
    return secrets.token_hex(12), itertools.count()


_prefix, _counter = _draw()


def _redraw_in_child() -> None:
    global _prefix, _counter
    _prefix, _counter = _draw()


os.register_at_fork(after_in_child=_redraw_in_child)


def attempt_token() -> str:
    """A token no other attempt, in this process or any other, has or will have."""
    return f"{_prefix}{next(_counter):08x}"
