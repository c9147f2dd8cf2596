"""A JetStream pull-consumer worker that processes each event once.

Workers share one durable pull consumer: each fetches a batch, processes
every message with an ``OnceProcessor`` in a worker thread (the store and
the handler are synchronous, so the event loop only moves messages), and
acknowledges it (``ack_sync``: the server confirmed) only once its
completion is recorded. A message whose worker crashed is redelivered
after the consumer's ``ack_wait`` (the store's lease); one whose handler
failed is handed back (``nak``) to be redelivered after ``retry_delay``;
while a handler runs, each renewal of its claim also tells JetStream the
message is in progress, so a slow handler keeps it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from hubsig._dedupe import DedupePolicy, DeliveryStore
from hubsig._hidden import HiddenValue
from hubsig._log_text import escaped
from hubsig.errors import ConfigurationError
from hubsig.sinks import SinkMessage, needs
from hubsig.workers import ClaimedEvent, OnceProcessor, Verdict

__all__ = ["JetStreamWorker"]

logger = logging.getLogger("hubsig.worker")


class JetStreamWorker:
    """One worker of the durable pull consumer ``durable`` on JetStream ``stream``.

    ``handler`` gets each ``ClaimedEvent``; a coroutine function is run on
    the worker's loop. ``run()`` connects, makes the consumer if missing
    (every message of the stream, explicit acks, redelivered without limit)
    and processes messages until ``stop`` is set.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        durable: str,
        *,
        store: DeliveryStore,
        handler: Callable[[ClaimedEvent], object],
        subject: str | None = None,
        policy: DedupePolicy | None = None,
        batch: int = 16,
        fetch_wait: float = 1.0,
        retry_delay: float = 1.0,
    ) -> None:
        needs("nats", "nats")
        self.stream = stream
        self.durable = durable
        self.subject = subject or f"{stream}.events"
        self.batch = batch
        self.fetch_wait = fetch_wait
        self.retry_delay = retry_delay
        self._handler = handler
        self._loop: asyncio.AbstractEventLoop | None = None
        self.processor = OnceProcessor(store, self._call_handler, policy=policy)
        parts = urlsplit(url)
        self.server = f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"
        self._url = HiddenValue(url)
        self._client: Any = None
        self._subscription: Any = None

    def __repr__(self) -> str:
        return f"JetStreamWorker(server={self.server!r}, stream={self.stream!r})"

    def _call_handler(self, event: ClaimedEvent) -> object:
        """Run the user's handler from the processor's thread: a coroutine on the loop."""
        result = self._handler(event)
        if inspect.isawaitable(result):
            assert self._loop is not None
            return asyncio.run_coroutine_threadsafe(_awaited(result), self._loop).result()
        return result

    async def connect(self) -> None:
        """Connect and bind the pull consumer (made if missing); ``ConfigurationError`` when
        the server, the stream or the consumer cannot be had."""
        nats = needs("nats", "nats")
        nats_js = needs("nats.js", "nats")
        self._loop = asyncio.get_running_loop()
        try:
            self._client = await nats.connect(
                self._url.reveal(),
                reconnect_time_wait=0.5,
                max_reconnect_attempts=-1,
                error_cb=_quiet,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        except Exception as error:
            raise ConfigurationError(
                f"the JetStream worker cannot reach {self.server}: {type(error).__name__}"
            ) from None
        js = self._client.jetstream()
        config = nats_js.api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=nats_js.api.AckPolicy.EXPLICIT,
            deliver_policy=nats_js.api.DeliverPolicy.ALL,
            ack_wait=self.processor.policy.lease,
            max_deliver=-1,
            filter_subject=self.subject,
        )
        try:
            self._subscription = await js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream, config=config
            )
        except nats_js.errors.Error as error:
            await self._client.close()
            raise ConfigurationError(
                f"cannot consume {self.subject} of the JetStream stream {self.stream}: {error}"
            ) from None

    async def _disconnected(self) -> None:
        if self._client is None:  # closed on purpose
            return
        logger.error("lost the NATS server %s; reconnecting", self.server)

    async def _reconnected(self) -> None:
        logger.warning("reconnected to the NATS server %s", self.server)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Process messages until ``stop`` is set (forever without one), then close."""
        if self._subscription is None:
            await self.connect()
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                await self.run_once()
        finally:
            await self.close()

    async def run_once(self) -> int:
        """Fetch one batch (waiting up to ``fetch_wait``) and process it; how many messages."""
        nats = needs("nats", "nats")
        if self._subscription is None:
            await self.connect()
        try:
            messages = await self._subscription.fetch(self.batch, timeout=self.fetch_wait)
        except (nats.errors.TimeoutError, TimeoutError):  # nothing came within fetch_wait
            return 0
        except nats.errors.Error as error:  # reconnecting: the client retries by itself
            logger.warning("could not fetch from %s: %s", self.stream, type(error).__name__)
            await asyncio.sleep(min(1.0, self.fetch_wait))
            return 0
        await asyncio.gather(*(self._process(message) for message in messages))
        return len(messages)

    async def _process(self, raw: Any) -> None:
        try:
            message = SinkMessage.from_json(raw.data)
        except ValueError as error:
            logger.error(
                "a message on %s is not a hubsig message (%s); terminated without processing",
                raw.subject,
                error,
            )
            await raw.term()
            return
        loop = asyncio.get_running_loop()

        def still_working() -> None:
            asyncio.run_coroutine_threadsafe(raw.in_progress(), loop).result(5.0)

        verdict = await asyncio.to_thread(self.processor.process, message, still_working)
        try:
            if verdict.acknowledge:
                await raw.ack_sync(timeout=5.0)
            else:
                busy = verdict is Verdict.BUSY
                await raw.nak(delay=self.processor.policy.lease / 3 if busy else self.retry_delay)
        except Exception as error:  # redelivered after ack_wait, then found done
            logger.warning(
                "could not acknowledge key=%s (%s); it will be redelivered and found done",
                escaped(message.key),
                type(error).__name__,
            )

    async def close(self) -> None:
        """Close the connection (unacknowledged messages are redelivered to others)."""
        client, self._client, self._subscription = self._client, None, None
        if client is not None and not client.is_closed:
            await client.close()


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


async def _quiet(error: Exception) -> None:
    logger.debug("NATS: %s", type(error).__name__)
