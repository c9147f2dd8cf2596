"""A store in PostgreSQL (``hubsig[postgres]``, psycopg 3): shared, and transactional.

For receivers on several machines that keep their data in PostgreSQL. Each
claim, completion, renewal and release is one statement over all of a
delivery's events, timed by the server's clock (``clock_timestamp()``), so
machines whose clocks disagree still agree on leases. Claims are fenced by
the attempt's token, and an expired, unsettled claim is kept a day so the
event's next claim is ``RECLAIMED``.

``transaction(delivery)`` lends the handler a connection with a transaction
open; when the handler succeeds, hubsig marks its events done in that same
transaction and commits, so the handler's writes and the completion land
together or not at all. If another attempt took the events meanwhile, the
commit is refused (``ClaimLost``) and rolled back. Errors talking to the
server become ``StoreUnavailable`` (500, so the sender retries);
``check()`` creates the table if it can and fails start-up with
``ConfigurationError`` when the table is missing, foreign, or not writable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from hubsig._dedupe import Claim, ClaimLost, Claims, StoreUnavailable
from hubsig._hidden import HiddenValue
from hubsig.errors import ConfigurationError
from hubsig.stores._lending import Lent, claims_of, committed_by_handler, lent_connection

if TYPE_CHECKING:
    import psycopg

    from hubsig._delivery import Delivery

__all__ = ["AsyncPostgresStore", "PostgresStore", "schema"]

logger = logging.getLogger("hubsig")

CLAIM_MEMORY = 24 * 3600.0
"""How long an expired, unsettled claim is kept, so the event's next claim is RECLAIMED."""
_PRUNE_BATCH = 64
_IDLE_CONNECTIONS = 8
_DEADLOCK_TRIES = 3
"""Claims of overlapping events can deadlock in PostgreSQL; the loser's whole statement is
rolled back, so it is simply tried again."""


def _prune_arguments(keys: Sequence[str]) -> dict[str, float | int]:
    return {"memory": CLAIM_MEMORY, "batch": _PRUNE_BATCH + 2 * len(keys)}


def schema(table: str = "hubsig_events") -> str:
    """The DDL the store needs, for a migration when its user may not create tables."""
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "    key text PRIMARY KEY,\n"
        "    state text NOT NULL CHECK (state IN ('claimed', 'done')),\n"
        "    expires double precision NOT NULL,\n"
        "    token text\n"
        ");\n"
        f"CREATE INDEX IF NOT EXISTS {table}_by_expiry ON {table} (expires);\n"
    )


_NOW = "extract(epoch FROM clock_timestamp())"


class _Statements:
    """The store's SQL for one table name (checked to be a plain identifier)."""

    def __init__(self, table: str) -> None:
        if not table.replace("_", "").isalnum() or not table.isascii() or table[0].isdigit():
            raise ConfigurationError(
                f"table must be a plain SQL identifier (letters, digits, _), not {table!r}"
            )
        self.table = table
        # Claims first take a transaction-scoped advisory lock per key, in one global order,
        # in a statement of their own: the claim statement's snapshot then sees every claim
        # committed before it, so it locks existing rows in key order and inserts keys no
        # one else can insert meanwhile. With settling also locking rows in key order, no two
        # statements can wait on each other in a cycle.
        self.lock = """
            SELECT pg_advisory_xact_lock(h)
            FROM (SELECT DISTINCT hashtextextended(k, 0) AS h
                  FROM unnest(%(keys)s::text[]) AS k) AS hashes
            ORDER BY h
        """
        self.claim = f"""
            WITH now AS (SELECT {_NOW} AS t),
            old AS (
                SELECT key, state, expires FROM {table}
                WHERE key = ANY(%(keys)s) ORDER BY key FOR UPDATE
            ),
            won AS (
                INSERT INTO {table} AS e (key, state, expires, token)
                SELECT k, 'claimed', now.t + %(lease)s, %(token)s
                FROM unnest(%(keys)s::text[]) AS k, now ORDER BY k
                ON CONFLICT (key) DO UPDATE
                    SET state = 'claimed', expires = EXCLUDED.expires, token = EXCLUDED.token
                    WHERE e.expires <= (SELECT t FROM now)
                RETURNING e.key
            )
            SELECT k, old.state, won.key IS NOT NULL
            FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS given(k, position)
            LEFT JOIN old ON old.key = k LEFT JOIN won ON won.key = k
            ORDER BY position
        """
        self.prune = f"""
            DELETE FROM {table} WHERE key IN (
                SELECT key FROM {table}
                WHERE expires <= {_NOW}
                  AND (state = 'done' OR expires <= {_NOW} - %(memory)s)
                LIMIT %(batch)s FOR UPDATE SKIP LOCKED
            )
        """
        # A plain completion: not over a live claim another attempt holds now.
        self.complete = f"""
            INSERT INTO {table} AS e (key, state, expires, token)
            SELECT k, 'done', {_NOW} + %(retention)s, NULL
            FROM unnest(%(keys)s::text[]) AS k ORDER BY k
            ON CONFLICT (key) DO UPDATE
                SET state = 'done', expires = EXCLUDED.expires, token = NULL
                WHERE e.state = 'done' OR e.token = %(token)s OR e.expires <= {_NOW}
        """
        # Rows are locked in key order, as the claim locks them, so that two attempts
        # settling overlapping events cannot deadlock.
        mine = f"""
            SELECT key FROM {table}
            WHERE key = ANY(%(keys)s) AND state = 'claimed' AND token = %(token)s
            ORDER BY key FOR UPDATE
        """
        # Inside the handler's transaction: only claims this attempt still holds.
        self.commit = f"""
            UPDATE {table} SET state = 'done', expires = {_NOW} + %(retention)s, token = NULL
            WHERE key IN ({mine})
        """
        self.renew = f"""
            UPDATE {table} SET expires = {_NOW} + %(lease)s WHERE key IN ({mine})
        """
        self.release = f"""
            DELETE FROM {table} WHERE key IN ({mine})
        """
        # pg_catalog, not information_schema: that one hides tables the user has no rights on.
        self.columns = """
            SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = to_regclass(%(table)s) AND attnum > 0 AND NOT attisdropped
        """
        self.privileges = f"""
            SELECT has_table_privilege('{table}', 'SELECT, INSERT, UPDATE, DELETE')
        """


_EXPECTED_COLUMNS = {
    "key": "text",
    "state": "text",
    "expires": "double precision",
    "token": "text",
}


def _verdicts(rows: Sequence[tuple[Any, ...]]) -> list[Claim]:
    found = []
    for _key, before, won in rows:
        if won:
            found.append(Claim.RECLAIMED if before == "claimed" else Claim.CLAIMED)
        else:
            # Not won: a live claim or a remembered completion. A row this statement's
            # snapshot could not see is a claim committed a moment ago: busy.
            found.append(Claim.DONE if before == "done" else Claim.BUSY)
    return found


def _cannot_connect(error: BaseException) -> ConfigurationError:
    return ConfigurationError(
        f"the PostgreSQL store cannot connect: {type(error).__name__}: {error}"
    )


def _judge(table: str, columns: Sequence[tuple[Any, ...]], allowed: Any) -> None:
    """Whether ``check()``'s findings let the store work: hubsig's columns, and the rights."""
    _check_columns(table, {name: kind for name, kind in columns})
    if not allowed or not allowed[0]:
        raise ConfigurationError(
            f"the PostgreSQL user may not SELECT, INSERT, UPDATE and DELETE in {table}"
        )


def _check_columns(table: str, columns: dict[str, str]) -> None:
    if not columns:
        raise ConfigurationError(
            f"the PostgreSQL store's table {table} does not exist and could not be created; "
            f"create it with:\n{schema(table)}"
        )
    wrong = {name for name, kind in _EXPECTED_COLUMNS.items() if columns.get(name) != kind}
    if wrong:
        raise ConfigurationError(
            f"the PostgreSQL table {table} is not hubsig's (columns {sorted(wrong)} are "
            f"missing or of another type); expected:\n{schema(table)}"
        )


_CREDENTIALS = ("password", "sslpassword")
"""The conninfo parameters that are secrets: held apart, where ``vars`` does not show them."""


def _split_conninfo(conninfo: str) -> tuple[str, HiddenValue[dict[str, Any]]]:
    """``conninfo`` without its credentials, and the credentials, hidden.

    Raises ``ConfigurationError`` for a conninfo libpq cannot parse, without
    repeating it (it may hold a password).
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parameters = conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise ConfigurationError(
            "the PostgreSQL conninfo cannot be parsed (a URL or key=value pairs is expected)"
        ) from None
    hidden: dict[str, Any] = {
        name: parameters.pop(name) for name in _CREDENTIALS if name in parameters
    }
    return make_conninfo("", **parameters), HiddenValue(hidden)


def _unavailable(error: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"PostgreSQL is unavailable: {type(error).__name__}")


class PostgresStore:
    """Synchronous store over psycopg 3 connections to ``conninfo`` (a URL or key=value string).

    Keeps up to eight idle connections for reuse; ``connect_timeout`` bounds
    how long a call waits for a new one. A password in ``conninfo`` is held
    apart from it, shown by no ``repr`` or ``vars``.
    """

    blocking = True
    """Its calls wait on the network: async receivers run them in a worker thread."""

    def __init__(
        self, conninfo: str, *, table: str = "hubsig_events", connect_timeout: float = 5.0
    ) -> None:
        import psycopg

        self._psycopg = psycopg
        self._sql = _Statements(table)
        self._conninfo, self._credentials = _split_conninfo(conninfo)
        self._timeout = connect_timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore(table={self._sql.table!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        return self._psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._timeout)),
            **self._credentials.reveal(),
        )

    def _borrow(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _give_back(self, connection: psycopg.Connection[Any], broken: bool = False) -> None:
        idle = self._psycopg.pq.TransactionStatus.IDLE
        usable = not broken and not connection.closed and connection.info.transaction_status == idle
        with self._lock:
            if usable and len(self._idle) < _IDLE_CONNECTIONS:
                connection.autocommit = True
                self._idle.append(connection)
                return
        connection.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            connection = self._borrow()
        except self._psycopg.Error as error:
            raise _unavailable(error) from None
        try:
            yield connection
        except self._psycopg.Error as error:
            self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        except BaseException:
            self._give_back(connection, broken=True)
            raise
        self._give_back(connection)

    def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        arguments = {"keys": list(keys), "lease": lease, "token": token}
        with self._connection() as connection:
            for attempt in range(_DEADLOCK_TRIES):
                try:
                    with connection.transaction():
                        connection.execute(self._sql.lock, arguments)
                        rows = connection.execute(self._sql.claim, arguments).fetchall()
                    break
                except self._psycopg.errors.DeadlockDetected:
                    if attempt == _DEADLOCK_TRIES - 1:
                        raise  # rolled back whole: nothing claimed
            try:
                connection.execute(self._sql.prune, _prune_arguments(keys))
            except self._psycopg.errors.DatabaseError:
                logger.warning("could not prune expired rows; the next claim will")
        return _verdicts(rows)

    def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        with self._connection() as connection, connection.transaction():
            arguments = {"keys": list(keys), "retention": retention, "token": token}
            connection.execute(self._sql.lock, arguments)
            connection.execute(self._sql.complete, arguments)

    def release(self, keys: Sequence[str], token: str) -> None:
        with self._connection() as connection:
            connection.execute(self._sql.release, {"keys": list(keys), "token": token})

    def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        with self._connection() as connection:
            arguments = {"keys": list(keys), "lease": lease, "token": token}
            connection.execute(self._sql.renew, arguments)

    def check(self) -> None:
        """Create the table if missing; fail with ``ConfigurationError`` if it cannot work."""
        psycopg = self._psycopg
        try:
            connection = self._connect()
        except psycopg.Error as error:
            raise _cannot_connect(error) from None
        try:
            table = {"table": self._sql.table}
            if not connection.execute(self._sql.columns, table).fetchall():
                # Without the right to create it, the error below shows the DDL to run.
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                    connection.execute(schema(self._sql.table))
            found = connection.execute(self._sql.columns, table).fetchall()
            allowed = connection.execute(self._sql.privileges).fetchone()
            _judge(self._sql.table, found, allowed)
        except psycopg.Error as error:
            raise ConfigurationError(f"the PostgreSQL store cannot work: {error}") from None
        finally:
            connection.close()

    def transaction(self, delivery: Delivery) -> psycopg.Connection[Any]:
        """A connection in the transaction that will mark ``delivery``'s events done.

        Write with it and do not commit: hubsig commits when the handler
        returns successfully, with the events marked done, and rolls back
        when it fails; a crash at any instant leaves both or neither. Asked
        again for the same delivery, it returns the same connection.
        """
        claims = claims_of(delivery, self)
        if claims.transaction is not None:
            connection: psycopg.Connection[Any] = lent_connection(claims, self)
            return connection
        try:
            connection = self._borrow()
        except self._psycopg.Error as error:
            raise _unavailable(error) from None
        try:
            connection.autocommit = False
            connection.execute("SELECT 1")  # opens the transaction, so hubsig sees it end early
        except self._psycopg.Error as error:
            self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        claims.transaction = Lent(self, connection)
        return connection

    def commit_transaction(self, claims: Claims, retention: float) -> None:
        connection: psycopg.Connection[Any] = lent_connection(claims, self)
        claims.transaction = None
        try:
            intrans = self._psycopg.pq.TransactionStatus.INTRANS
            if connection.info.transaction_status != intrans:
                committed_by_handler()
            arguments = {"keys": list(claims.keys), "retention": retention, "token": claims.token}
            marked = connection.execute(self._sql.commit, arguments).rowcount
            if marked < len(claims.keys):
                connection.rollback()
                self._give_back(connection)
                raise ClaimLost("another attempt holds these events")
            connection.commit()
        except self._psycopg.Error as error:
            self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        self._give_back(connection)

    def abort_transaction(self, claims: Claims) -> None:
        """Roll back and close: a handler cancelled while its thread still runs must not
        write into a connection that went back to the pool (closing also rolls back)."""
        connection: psycopg.Connection[Any] = lent_connection(claims, self)
        claims.transaction = None
        with contextlib.suppress(self._psycopg.Error):
            connection.rollback()
        self._give_back(connection, broken=True)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class AsyncPostgresStore:
    """The same store over ``psycopg.AsyncConnection``, for ASGI receivers.

    ``await store.transaction(delivery)`` lends the handler its connection.
    """

    blocking = False
    """Its calls are awaited on the event loop."""

    def __init__(
        self, conninfo: str, *, table: str = "hubsig_events", connect_timeout: float = 5.0
    ) -> None:
        import psycopg

        self._psycopg = psycopg
        self._sql = _Statements(table)
        self._conninfo, self._credentials = _split_conninfo(conninfo)
        self._timeout = connect_timeout
        # A connection belongs to the event loop it was opened on: idle ones are kept per loop.
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AsyncPostgresStore(table={self._sql.table!r})"

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await self._psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._timeout)),
            **self._credentials.reveal(),
        )

    async def _borrow(self) -> psycopg.AsyncConnection[Any]:
        with self._lock:
            idle = self._idle.get(asyncio.get_running_loop())
            if idle:
                return idle.pop()
        return await self._connect()

    async def _give_back(
        self, connection: psycopg.AsyncConnection[Any], broken: bool = False
    ) -> None:
        quiet = self._psycopg.pq.TransactionStatus.IDLE
        usable = (
            not broken and not connection.closed and connection.info.transaction_status == quiet
        )
        if usable:
            await connection.set_autocommit(True)
            with self._lock:
                idle = self._idle.setdefault(asyncio.get_running_loop(), [])
                if len(idle) < _IDLE_CONNECTIONS:
                    idle.append(connection)
                    return
        await connection.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            connection = await self._borrow()
        except self._psycopg.Error as error:
            raise _unavailable(error) from None
        try:
            yield connection
        except self._psycopg.Error as error:
            await self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        except BaseException:
            await self._give_back(connection, broken=True)
            raise
        await self._give_back(connection)

    async def claim(self, keys: Sequence[str], lease: float, token: str) -> list[Claim]:
        arguments = {"keys": list(keys), "lease": lease, "token": token}
        async with self._connection() as connection:
            for attempt in range(_DEADLOCK_TRIES):
                try:
                    async with connection.transaction():
                        await connection.execute(self._sql.lock, arguments)
                        cursor = await connection.execute(self._sql.claim, arguments)
                        rows = await cursor.fetchall()
                    break
                except self._psycopg.errors.DeadlockDetected:
                    if attempt == _DEADLOCK_TRIES - 1:
                        raise
            try:
                await connection.execute(self._sql.prune, _prune_arguments(keys))
            except self._psycopg.errors.DatabaseError:
                logger.warning("could not prune expired rows; the next claim will")
        return _verdicts(rows)

    async def complete(self, keys: Sequence[str], retention: float, token: str) -> None:
        async with self._connection() as connection, connection.transaction():
            arguments = {"keys": list(keys), "retention": retention, "token": token}
            await connection.execute(self._sql.lock, arguments)
            await connection.execute(self._sql.complete, arguments)

    async def release(self, keys: Sequence[str], token: str) -> None:
        async with self._connection() as connection:
            await connection.execute(self._sql.release, {"keys": list(keys), "token": token})

    async def renew(self, keys: Sequence[str], lease: float, token: str) -> None:
        async with self._connection() as connection:
            arguments = {"keys": list(keys), "lease": lease, "token": token}
            await connection.execute(self._sql.renew, arguments)

    async def check(self) -> None:
        """Create the table if missing; raise ``ConfigurationError`` if it cannot work."""
        psycopg = self._psycopg
        try:
            connection = await self._connect()
        except psycopg.Error as error:
            raise _cannot_connect(error) from None
        try:
            table = {"table": self._sql.table}
            if not await (await connection.execute(self._sql.columns, table)).fetchall():
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
                    await connection.execute(schema(self._sql.table))
            found = await (await connection.execute(self._sql.columns, table)).fetchall()
            allowed = await (await connection.execute(self._sql.privileges)).fetchone()
            _judge(self._sql.table, found, allowed)
        except psycopg.Error as error:
            raise ConfigurationError(f"the PostgreSQL store cannot work: {error}") from None
        finally:
            await connection.close()

    async def transaction(self, delivery: Delivery) -> psycopg.AsyncConnection[Any]:
        """A connection in the transaction that will mark ``delivery``'s events done
        (see ``PostgresStore.transaction``)."""
        claims = claims_of(delivery, self)
        if claims.transaction is not None:
            connection: psycopg.AsyncConnection[Any] = lent_connection(claims, self)
            return connection
        try:
            connection = await self._borrow()
        except self._psycopg.Error as error:
            raise _unavailable(error) from None
        try:
            await connection.set_autocommit(False)
            await connection.execute("SELECT 1")
        except self._psycopg.Error as error:
            await self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        claims.transaction = Lent(self, connection)
        return connection

    async def commit_transaction(self, claims: Claims, retention: float) -> None:
        connection: psycopg.AsyncConnection[Any] = lent_connection(claims, self)
        claims.transaction = None
        try:
            intrans = self._psycopg.pq.TransactionStatus.INTRANS
            if connection.info.transaction_status != intrans:
                committed_by_handler()
            arguments = {"keys": list(claims.keys), "retention": retention, "token": claims.token}
            cursor = await connection.execute(self._sql.commit, arguments)
            if cursor.rowcount < len(claims.keys):
                await connection.rollback()
                await self._give_back(connection)
                raise ClaimLost("another attempt holds these events")
            await connection.commit()
        except self._psycopg.Error as error:
            await self._give_back(connection, broken=True)
            raise _unavailable(error) from None
        await self._give_back(connection)

    async def abort_transaction(self, claims: Claims) -> None:
        connection: psycopg.AsyncConnection[Any] = lent_connection(claims, self)
        claims.transaction = None
        with contextlib.suppress(self._psycopg.Error):
            await connection.rollback()
        await self._give_back(connection, broken=True)

    async def close(self) -> None:
        """Close the idle connections opened on this event loop."""
        with self._lock:
            idle = self._idle.pop(asyncio.get_running_loop(), [])
        for connection in idle:
            await connection.close()
