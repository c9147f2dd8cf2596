"""The transactional outbox: events written in the transaction that completes their claims,
relayed to the engine afterwards.

``OutboxSink(store)`` is a sink for a receiver whose store lends transactions
(``SQLiteStore``, ``PostgresStore``): its ``publish`` inserts one row per fresh
event into an outbox table through ``store.transaction(delivery)``, so the
rows commit together with the events' completion, or neither does. The sender
gets 200 once they are committed, whatever the engine is doing. ``OutboxRelay``
then reads the rows in order, sends them with an engine sink's ``send`` (a Redis
stream, JetStream, Celery), and deletes them once the engine confirmed them. A
crash between "recorded" and "published" loses nothing: the rows wait in the
table; a crash between "published" and "deleted" publishes them again, which
JetStream's duplicate window or the workers' store turns into once.

One relay per SQLite file (two would publish the same rows twice, which the
workers absorb, but for nothing); with PostgreSQL any number, each taking rows
the others have not locked.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage, messages_of

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["EngineSink", "OutboxRelay", "OutboxSink"]

logger = logging.getLogger("hubsig")

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class EngineSink(Protocol):
    """What a relay sends through: an engine sink's ``send`` (every engine sink has one)."""

    def send(self, messages: Sequence[SinkMessage]) -> None: ...


def _kind(store: object) -> str:
    """``"sqlite"`` or ``"postgres"``: the stores whose transactions an outbox can write in."""
    from hubsig.stores.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        if str(store.path) == ":memory:":
            raise ConfigurationError("an outbox needs a SQLite file, not :memory:")
        return "sqlite"
    if (
        type(store).__name__ == "PostgresStore"
        and type(store).__module__ == "hubsig.stores.postgres"
    ):
        return "postgres"
    raise ConfigurationError(
        f"an outbox writes in the store's transaction: give it a SQLiteStore or a "
        f"PostgresStore, not {type(store).__name__}"
    )


class _Table:
    """The outbox table's statements, in the store's SQL dialect."""

    def __init__(self, kind: str, table: str) -> None:
        if not _TABLE.fullmatch(table):
            raise ConfigurationError(f"{table!r} is not a plain SQL table name")
        self.kind, self.name = kind, table
        mark = "?" if kind == "sqlite" else "%s"
        serial = (
            "INTEGER PRIMARY KEY AUTOINCREMENT" if kind == "sqlite" else "BIGSERIAL PRIMARY KEY"
        )
        self.create = (
            f"CREATE TABLE IF NOT EXISTS {table} "
            f"(id {serial}, key TEXT NOT NULL, message TEXT NOT NULL, created REAL NOT NULL)"
        )
        self.insert = f"INSERT INTO {table} (key, message, created) VALUES ({mark}, {mark}, {mark})"  # noqa: S608
        self.oldest = f"SELECT id, message FROM {table} ORDER BY id LIMIT {mark}"  # noqa: S608
        self.take = (  # PostgreSQL: rows no other relay holds, locked until this one commits
            f"SELECT id, message FROM {table} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"  # noqa: S608
        )
        self.delete = f"DELETE FROM {table} WHERE id = {mark}"  # noqa: S608
        self.count = f"SELECT count(*) FROM {table}"  # noqa: S608


class OutboxSink:
    """Writes each fresh event into ``table`` in the transaction that completes its claims.

    Give it the receiver's own store (``store=`` and ``sink=OutboxSink(store)``).
    ``check()`` creates the table if it is missing.
    """

    blocking = True
    """It writes through a blocking store: async receivers call it from a worker thread."""

    def __init__(self, store: Any, table: str = "hubsig_outbox") -> None:
        self.store = store
        self._table = _Table(_kind(store), table)

    def __repr__(self) -> str:
        return f"OutboxSink(table={self._table.name!r})"

    def check(self) -> None:
        """Create the table if missing; ``ConfigurationError`` when it cannot be."""
        try:
            with _connection(self.store, self._table.kind) as db:
                db.execute(self._table.create)
        except ConfigurationError:
            raise
        except Exception as error:
            raise ConfigurationError(
                f"cannot create the outbox table {self._table.name}: {type(error).__name__}: "
                f"{error}"
            ) from None

    def publish(self, delivery: Delivery) -> None:
        """Insert one row per fresh event through the store's lent transaction."""
        messages = messages_of(delivery)
        if not messages:
            return
        db = self.store.transaction(delivery)
        now = time.time()
        for message in messages:
            db.execute(self._table.insert, (message.key, message.to_json().decode(), now))


class OutboxRelay:
    """Sends the outbox's rows, oldest first, through ``sink`` (an engine sink), and deletes
    them once the engine confirmed them.

    ``run()`` polls every ``interval`` seconds while the table is empty, and
    logs an engine outage once (ERROR) and its end (WARNING); the rows wait.
    """

    def __init__(
        self,
        store: Any,
        sink: EngineSink,
        *,
        table: str = "hubsig_outbox",
        batch: int = 100,
        interval: float = 0.2,
    ) -> None:
        if not callable(getattr(sink, "send", None)):
            raise ConfigurationError(
                "an outbox relay sends through an engine sink (RedisStreamSink, JetStreamSink, "
                f"CelerySink), which has send(messages); {type(sink).__name__} has not"
            )
        self.store = store
        self.sink = sink
        self._table = _Table(_kind(store), table)
        self.batch = batch
        self.interval = interval

    def __repr__(self) -> str:
        return f"OutboxRelay(table={self._table.name!r}, sink={self.sink!r})"

    def run(self, stop: threading.Event | None = None) -> None:
        """Relay until ``stop`` is set (forever without one)."""
        stop = stop or threading.Event()
        down = False
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception as error:
                if not down:
                    logger.error(
                        "could not relay the outbox %s (%s: %s); its rows wait",
                        self._table.name,
                        type(error).__name__,
                        error,
                    )
                    down = True
                stop.wait(min(1.0, self.interval * 5))
                continue
            if down:
                logger.warning("relaying the outbox %s again", self._table.name)
                down = False
            if not sent:
                stop.wait(self.interval)

    def run_once(self) -> int:
        """Send one batch of the oldest rows and delete them; how many were sent. Raises
        what the engine raised (the rows stay)."""
        with _connection(self.store, self._table.kind) as db:
            if self._table.kind == "postgres":
                with db.transaction():
                    rows = db.execute(self._table.take, (self.batch,)).fetchall()
                    self._send(rows)
                    db.cursor().executemany(self._table.delete, [(row[0],) for row in rows])
                return len(rows)
            rows = db.execute(self._table.oldest, (self.batch,)).fetchall()
            self._send(rows)
            if rows:
                db.execute("BEGIN IMMEDIATE")  # one transaction for the deletes
                db.executemany(self._table.delete, [(row[0],) for row in rows])
                db.execute("COMMIT")
            return len(rows)

    def _send(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            self.sink.send([SinkMessage.from_json(row[1]) for row in rows])

    def pending(self) -> int:
        """How many rows wait to be relayed."""
        with _connection(self.store, self._table.kind) as db:
            count: int = db.execute(self._table.count).fetchone()[0]
            return count


@contextmanager
def _connection(store: Any, kind: str) -> Iterator[Any]:
    """A connection to the store's database outside any delivery: autocommit."""
    if kind == "postgres":
        with store._connection() as connection:
            yield connection
        return
    db = sqlite3.connect(store.path, timeout=30, isolation_level=None)
    try:
        yield db
    finally:
        db.close()
