"""A sink that appends each fresh event to a Redis stream (``XADD``), for consumer groups.

Each entry has the fields ``key`` (the event's dedupe key), ``event`` (its
JSON object, as signed), ``operation_id`` and ``trace_id``. A delivery's
entries go in one ``MULTI``/``EXEC``, so Redis takes all of them or none,
and the receiver answers 200 only after ``EXEC`` succeeded. What "durable"
means is Redis's persistence: with ``appendonly yes`` and ``appendfsync
always`` an entry is on disk before Redis answers; ``check()`` refuses a
Redis that keeps the stream in memory only (unless ``durable=False``) and
warns when it syncs only every second.

A stream has no duplicate detection: an event the sender redelivers after a
lost completion is appended again with the same ``key``, and the workers'
store (``hubsig.workers.redis_streams``) processes it once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hubsig.errors import ConfigurationError, PublishUnconfirmed
from hubsig.sinks import SinkMessage, messages_of, needs

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["RedisStreamSink", "check_persistence", "redis_client"]

logger = logging.getLogger("hubsig")

SOCKET_TIMEOUT = 5.0
"""Seconds a call waits on a silent Redis before the delivery is answered 503."""


def redis_client(url_or_client: Any, socket_timeout: float = SOCKET_TIMEOUT) -> Any:
    """A ``redis.Redis`` for a URL (its password hidden from every ``repr``, each call
    bounded by ``socket_timeout``), or the client given."""
    if not isinstance(url_or_client, str):
        return url_or_client
    redis = needs("redis", "redis")
    from hubsig.stores.redis import _pool_options

    options = _pool_options(redis.connection.parse_url(url_or_client))
    options.setdefault("socket_timeout", socket_timeout)
    options.setdefault("socket_connect_timeout", socket_timeout)
    return redis.Redis.from_pool(redis.BlockingConnectionPool(**options))


class RedisStreamSink:
    """Appends each fresh event of a delivery to ``stream`` (a ``redis.Redis`` or a URL).

    ``durable=False`` accepts a Redis without an append-only file (a restart
    loses what the workers had not read); ``check()`` refuses one otherwise.
    """

    blocking = True
    """Its calls wait on the network: async receivers run them in a worker thread."""

    def __init__(self, client: Any, stream: str, *, durable: bool = True) -> None:
        if not stream:
            raise ConfigurationError("RedisStreamSink needs a stream name")
        redis = needs("redis", "redis")
        self._redis = redis_client(client)
        self._errors = (redis.RedisError, OSError)
        self.stream = stream
        self.durable = durable

    def __repr__(self) -> str:
        return f"RedisStreamSink(stream={self.stream!r})"

    def publish(self, delivery: Delivery) -> None:
        """``XADD`` every fresh event in one transaction; ``PublishUnconfirmed`` unless
        Redis ran it whole."""
        self.send(messages_of(delivery))

    def send(self, messages: Sequence[SinkMessage]) -> None:
        """``XADD`` ``messages`` in one transaction (what ``publish`` and an outbox relay do)."""
        if not messages:
            return
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                for message in messages:
                    pipe.xadd(self.stream, message.fields())
                pipe.execute()
        except self._errors as error:
            raise PublishUnconfirmed(
                f"Redis did not take the events for stream {self.stream}: "
                f"{type(error).__name__}: {error}"
            ) from None

    def check(self) -> None:
        """``ConfigurationError`` unless Redis answers, ``stream`` is a stream (or absent),
        this user may ``XADD`` to it, Redis writes it to disk and never evicts it."""
        try:
            self._redis.ping()
            kind = self._redis.type(self.stream)
        except self._errors as error:
            raise ConfigurationError(
                f"the Redis stream sink cannot reach Redis: {type(error).__name__}: {error}"
            ) from None
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind not in ("none", "stream"):
            raise ConfigurationError(
                f"the Redis key {self.stream} holds a {kind}, not a stream: name another stream"
            )
        self._check_may_append()
        self._check_persistence()

    def _check_may_append(self) -> None:
        """Queue an ``XADD`` in a transaction and discard it: Redis checks the user's ACL
        when it queues a command, so this proves the right to append without appending."""
        redis = needs("redis", "redis")
        connection = self._redis.connection_pool.get_connection()
        try:
            connection.send_command("MULTI")
            connection.read_response()
            try:
                connection.send_command("XADD", self.stream, "*", "key", "hubsig-check")
                connection.read_response()
            except redis.exceptions.ResponseError as error:
                raise ConfigurationError(
                    f"this Redis user may not XADD to the stream {self.stream}: {error}"
                ) from None
            finally:
                connection.send_command("DISCARD")
                # a refused command has already ended the transaction: DISCARD then errs
                with contextlib.suppress(redis.exceptions.ResponseError):
                    connection.read_response()
        except self._errors as error:
            connection.disconnect()
            raise ConfigurationError(
                f"the Redis stream sink cannot reach Redis: {type(error).__name__}"
            ) from None
        finally:
            self._redis.connection_pool.release(connection)

    def _check_persistence(self) -> None:
        check_persistence(self._redis, self._errors, self.durable)

    def close(self) -> None:
        """Close the client's connections."""
        self._redis.close()


def check_persistence(client: Any, errors: tuple[type[BaseException], ...], durable: bool) -> None:
    """``ConfigurationError`` for a Redis that may evict keys, or (when ``durable``) keeps
    its data in memory only; a WARNING when it syncs its append-only file less than always."""
    from hubsig.stores.redis import _check_eviction

    try:
        persistence = client.info("persistence")
        memory = client.info("memory")
    except errors:
        logger.warning(
            "could not read Redis's persistence and eviction settings (INFO is not allowed): "
            "events acknowledged to the sender are only as durable as they are"
        )
        return
    _check_eviction(memory)
    if str(persistence.get("aof_enabled", "0")) != "1":
        if durable:
            raise ConfigurationError(
                "Redis keeps its data in memory only (appendonly no): events acknowledged to "
                "the sender would be lost when Redis restarts; set appendonly yes and "
                "appendfsync always, or build the sink with durable=False to accept that"
            )
        logger.warning("Redis keeps its data in memory only (appendonly no): durable=False")
        return
    try:
        fsync = client.config_get("appendfsync").get("appendfsync")
    except errors:
        fsync = None
    if fsync != "always":
        logger.warning(
            "Redis syncs its append-only file %s, not always: a power loss can lose events "
            "acknowledged to the sender in the last second",
            fsync or "(unknown: CONFIG GET is not allowed)",
        )
