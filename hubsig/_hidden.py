"""Credentials a store must send to its server, held where nothing shows them.

A webhook secret is turned into HMAC key states at once (``hubsig._secrets``)
and never kept; a database or Redis password must be sent as it is at
every connection, so it has to be kept. Error trackers capture local
variables by ``repr``, and debug toolbars show ``vars``; a ``HiddenValue``
shows neither its value in its ``repr`` and ``str``, nor in any attribute:
the value lives only in a closure, which ``vars``, ``__slots__`` and
walks through attributes, dicts, lists and tuples never reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["HiddenValue"]

T = TypeVar("T")


class HiddenValue(Generic[T]):
    """A value shown as ``HiddenValue('***')``; ``reveal()`` gives it to the one caller that
    sends it (a connection's authentication), and nothing else holds it."""

    __slots__ = ("_reveal",)

    def __init__(self, value: T) -> None:
        self._reveal: Callable[[], T] = lambda: value

    def reveal(self) -> T:
        """The value itself, for sending it to the server it belongs to."""
        return self._reveal()

    def __repr__(self) -> str:
        return "HiddenValue('***')"

    __str__ = __repr__
