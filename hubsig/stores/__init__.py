"""Delivery stores: in memory (the default), SQLite (survives restarts), Redis (shared).

``MemoryStore`` and ``SQLiteStore`` are loaded on first use, so importing
this package costs nothing; the Redis stores are in ``hubsig.stores.redis``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubsig.stores.memory import MemoryStore
    from hubsig.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore"]

_LAZY = {"MemoryStore": "hubsig.stores.memory", "SQLiteStore": "hubsig.stores.sqlite"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hubsig.stores' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
