"""Delivery stores: in memory (the default), SQLite (survives restarts), Redis and
PostgreSQL (shared by several machines).

``MemoryStore`` and ``SQLiteStore`` are loaded on first use, so importing
this package costs nothing; the Redis stores are in ``hubsig.stores.redis``
and the PostgreSQL ones in ``hubsig.stores.postgres``. SQLite and PostgreSQL
also lend a handler the transaction that completes its events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubsig._lazy import lazy_attributes

if TYPE_CHECKING:
    from hubsig.stores.memory import MemoryStore
    from hubsig.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore"]

__getattr__ = lazy_attributes(
    __name__, {"MemoryStore": "hubsig.stores.memory", "SQLiteStore": "hubsig.stores.sqlite"}
)
