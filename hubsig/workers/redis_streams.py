"""A Redis Streams consumer-group worker that processes each event once.

Each worker is one consumer of a group: it reads new entries
(``XREADGROUP``), processes each with an ``OnceProcessor`` and acknowledges
it (``XACK``) only once its completion is recorded. An entry whose consumer
crashed stays pending; after ``idle`` seconds any worker takes it over
(``XAUTOCLAIM``) and processes it, or acknowledges it if the crashed one had
finished. A handler that fails leaves its entry pending, so it is tried
again after ``idle``; while a handler runs, its entry's idle time is reset
with each renewal of its claim, so a slow handler is not taken over.

Every ``trim_every`` seconds a worker trims the stream (``XTRIM ... MINID``)
below the oldest entry some group of the stream still needs (pending, or
not yet read), so it does not grow without end.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from hubsig._dedupe import DedupePolicy, DeliveryStore
from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage, needs
from hubsig.sinks.redis_streams import redis_client
from hubsig.workers import EventHandler, OnceProcessor

__all__ = ["RedisStreamWorker"]

logger = logging.getLogger("hubsig.worker")


class RedisStreamWorker:
    """One consumer of ``group`` on ``stream`` (a ``redis.Redis`` or a URL).

    Builds the group if it is missing (reading the stream from its start, so
    entries added before the first worker ran are processed too) and checks
    the store, so a worker that can never work stops at start-up.
    ``consumer`` names this worker in the group (its host and process id by
    default); ``idle`` is how long a pending entry waits before another
    consumer takes it over (the store's lease by default).
    """

    def __init__(
        self,
        client: Any,
        stream: str,
        group: str,
        *,
        store: DeliveryStore,
        handler: EventHandler,
        consumer: str | None = None,
        policy: DedupePolicy | None = None,
        batch: int = 16,
        block: float = 1.0,
        idle: float | None = None,
        trim_every: float | None = 60.0,
    ) -> None:
        redis = needs("redis", "redis")
        self._redis = redis_client(client, socket_timeout=block + 5.0)
        self._errors = (redis.RedisError, OSError)
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.processor = OnceProcessor(store, handler, policy=policy)
        self.batch = batch
        self.block = block
        self.idle = idle if idle is not None else self.processor.policy.lease
        self.trim_every = trim_every
        self._cursor = "0-0"
        self._create_group(redis)

    def __repr__(self) -> str:
        return f"RedisStreamWorker(stream={self.stream!r}, group={self.group!r})"

    def _create_group(self, redis: Any) -> None:
        try:
            self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise ConfigurationError(
                    f"cannot create the consumer group {self.group} on {self.stream}: {error}"
                ) from None
        except self._errors as error:
            raise ConfigurationError(
                f"the worker cannot reach Redis: {type(error).__name__}: {error}"
            ) from None

    def run(self, stop: threading.Event | None = None) -> None:
        """Process entries until ``stop`` is set (forever without one).

        Its own pending entries (a restart under the same ``consumer`` name)
        come first. A Redis outage is logged and waited out.
        """
        stop = stop or threading.Event()
        pending = True
        down = False
        trimmed = time.monotonic()
        while not stop.is_set():
            try:
                self.run_once(own_pending=pending)
                pending = False
                if self.trim_every is not None and time.monotonic() - trimmed > self.trim_every:
                    self.trim()
                    trimmed = time.monotonic()
                if down:
                    logger.warning("Redis answers again; consuming %s", self.stream)
                    down = False
            except self._errors as error:
                pending = True  # entries read but not acknowledged come back first
                if not down:
                    logger.error(
                        "cannot read the stream %s (%s); retrying until Redis answers",
                        self.stream,
                        type(error).__name__,
                    )
                    down = True
                stop.wait(min(1.0, self.block))

    def run_once(self, *, own_pending: bool = False) -> int:
        """One round: take over entries idle past ``idle``, then read (waiting up to
        ``block`` seconds) and process new ones; how many entries were processed."""
        entries = self._taken_over()
        if own_pending:
            entries += self._read("0", block=None)
        if not entries:
            entries = self._read(">", block=self.block)
        for entry_id, fields in entries:
            self._process(entry_id, fields)
        return len(entries)

    def trim(self) -> int:
        """Remove the entries every group of the stream is done with (acknowledged by all);
        how many were removed. Entries a group has not read, or holds pending, stay."""
        floor: tuple[int, int] | None = None
        for group in self._redis.xinfo_groups(self.stream):
            name = group["name"]
            pending = self._redis.xpending(self.stream, name)
            if pending["pending"]:
                bound = _entry_id(pending["min"])
            else:
                milliseconds, sequence = _entry_id(group["last-delivered-id"])
                bound = (milliseconds, sequence + 1)
            floor = bound if floor is None else min(floor, bound)
        if floor is None:
            return 0
        removed: int = self._redis.xtrim(
            self.stream, minid=f"{floor[0]}-{floor[1]}", approximate=False
        )
        return removed

    def _taken_over(self) -> list[tuple[Any, Any]]:
        answer = self._redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            int(self.idle * 1000),
            start_id=self._cursor,
            count=self.batch,
        )
        self._cursor = answer[0]
        if len(answer) > 2 and answer[2]:
            # entries deleted from the stream while pending: nothing left to process
            self._redis.xack(self.stream, self.group, *answer[2])
        return [entry for entry in answer[1] if entry[1] is not None]

    def _read(self, start: str, block: float | None) -> list[tuple[Any, Any]]:
        answer = self._redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self.batch,
            block=None if block is None else max(1, int(block * 1000)),
        )
        if not answer:
            return []
        entries: list[tuple[Any, Any]] = answer[0][1]
        return entries

    def _process(self, entry_id: Any, fields: Any) -> None:
        try:
            message = SinkMessage.from_fields(fields)
        except ValueError as error:
            logger.error(
                "entry %s of %s is not a hubsig message (%s); acknowledged without processing",
                _text(entry_id),
                self.stream,
                error,
            )
            self._redis.xack(self.stream, self.group, entry_id)
            return

        def still_working() -> None:  # reset the entry's idle time, so none takes it over
            self._redis.xclaim(self.stream, self.group, self.consumer, 0, [entry_id], justid=True)

        # Not acknowledged (BUSY, FAILED): the entry stays pending, and is taken over after
        # ``idle`` by whichever worker comes first, then processed or found done.
        if self.processor.process(message, still_working).acknowledge:
            self._redis.xack(self.stream, self.group, entry_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_id(value: Any) -> tuple[int, int]:
    milliseconds, sequence = _text(value).split("-")
    return int(milliseconds), int(sequence)
