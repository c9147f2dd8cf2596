"""Delivery stores: in memory (the default), SQLite (survives restarts), Redis (shared)."""

from hubsig.stores.memory import MemoryStore
from hubsig.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore"]
