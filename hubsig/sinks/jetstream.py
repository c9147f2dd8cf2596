"""A sink that publishes each fresh event to NATS JetStream and waits for its ack.

Each event is one message on ``subject`` (``<stream>.events`` unless
given): its data is the ``SinkMessage`` as JSON (``key``, ``event``,
``operation_id``, ``trace_id``), its headers ``Nats-Msg-Id`` (``message_id``:
the SHA-256 of the event's key, so JetStream's duplicate window drops a republish of
the same event and never confuses two keys a header would spell alike)
and ``X-B3-TraceId``. The receiver answers 200 only once JetStream answered
every publish with its acknowledgement (the stream stored it); a timeout or
an error is a 503.

nats-py is asyncio only, and a receiver may be WSGI, ASGI or both, so the
sink keeps one connection on an event loop of its own, in a daemon thread,
and its ``publish`` waits for that loop (``blocking`` is True: async
receivers call it from a worker thread). A server that goes away is
reconnected to in the background; meanwhile deliveries are answered 503.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from hubsig._hidden import HiddenValue
from hubsig.errors import BodyTooLarge, ConfigurationError, PublishUnconfirmed
from hubsig.sinks import SinkMessage, messages_of, needs

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["JetStreamSink", "message_id", "subject_matches"]

logger = logging.getLogger("hubsig")
T = TypeVar("T")

TIMEOUT = 5.0
"""Seconds a publish waits for JetStream's acknowledgement before the delivery gets 503."""
DUPLICATE_WINDOW = 120.0
"""Seconds JetStream remembers a message id, for a stream this sink creates (its default)."""


def subject_matches(subject: str, pattern: str) -> bool:
    """Whether NATS delivers ``subject`` to a subscription on ``pattern`` (``*``, ``>``)."""
    parts, wanted = subject.split("."), pattern.split(".")
    for position, part in enumerate(wanted):
        if part == ">":
            return len(parts) > position
        if position >= len(parts) or part not in ("*", parts[position]):
            return False
    return len(parts) == len(wanted)


class EventLoopThread:
    """An event loop running in a daemon thread, for blocking code to run coroutines on."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the loop and wait for it; ``TimeoutError`` past ``timeout``
        (the coroutine is then cancelled)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


class JetStreamSink:
    """Publishes each fresh event to JetStream ``stream`` on ``subject``, on the server
    at ``url`` (``nats://[USER:PASSWORD@]HOST:PORT``).

    ``check()`` connects, creates the stream (file storage) when it is
    missing and ``create`` is true, refuses a stream that does not take
    ``subject``, and proves the right to publish without storing anything.
    A password in the URL is held where no ``repr`` shows it.
    """

    blocking = True
    """Its calls wait for the sink's own event loop: async receivers run them in a thread."""

    def __init__(
        self,
        url: str,
        stream: str,
        *,
        subject: str | None = None,
        timeout: float = TIMEOUT,
        create: bool = True,
        duplicate_window: float = DUPLICATE_WINDOW,
    ) -> None:
        needs("nats", "nats")
        if not stream or any(char in stream for char in " .*>\t\r\n"):
            raise ConfigurationError(
                f"{stream!r} is not a JetStream stream name (no spaces, dots, * or >)"
            )
        self.stream = stream
        self.subject = subject or f"{stream}.events"
        self.timeout = timeout
        self.create = create
        self.duplicate_window = duplicate_window
        parts = urlsplit(url)
        self.server = f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"
        self._url = HiddenValue(url)
        self._lock = threading.Lock()
        self._loop: EventLoopThread | None = None
        self._client: Any = None
        self._connecting: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"JetStreamSink(server={self.server!r}, stream={self.stream!r})"

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = EventLoopThread("hubsig-jetstream-sink")
        return self._loop.run(coroutine, timeout)

    async def _connected(self) -> Any:
        if self._client is not None and not self._client.is_closed:
            return self._client
        if self._connecting is None:  # made on the sink's loop, which runs every call
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._client is None or self._client.is_closed:
                self._client = await self._connect()
        return self._client

    async def _connect(self) -> Any:
        nats = needs("nats", "nats")
        outage = {"reported": False}

        async def disconnected() -> None:
            if self._loop is not None and not outage["reported"]:  # not closed on purpose
                logger.warning("lost the NATS server %s; reconnecting", self.server)
                outage["reported"] = True

        async def reconnected() -> None:
            logger.warning("reconnected to the NATS server %s", self.server)
            outage["reported"] = False

        async def error(failure: Exception) -> None:
            logger.debug("NATS: %s", type(failure).__name__)

        return await nats.connect(
            self._url.reveal(),
            connect_timeout=self.timeout,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
        )

    def check(self) -> None:
        """``ConfigurationError`` unless the server answers, the stream exists (or was
        made) and takes ``subject``, and this user may publish to it."""
        try:
            self._run(self._check(), self.timeout * 3)
        except ConfigurationError:
            raise
        except Exception as error:
            raise ConfigurationError(
                f"the JetStream sink cannot reach {self.server}: {type(error).__name__}: {error}"
            ) from None

    async def _check(self) -> None:
        nats_js = needs("nats.js", "nats")
        client = await self._connected()
        js = client.jetstream(timeout=self.timeout)
        try:
            info = await js.stream_info(self.stream)
        except nats_js.errors.NotFoundError:
            info = await self._create(js)
        subjects = info.config.subjects or []
        if not any(subject_matches(self.subject, pattern) for pattern in subjects):
            raise ConfigurationError(
                f"the JetStream stream {self.stream} does not take the subject {self.subject} "
                f"(its subjects: {', '.join(subjects) or 'none'})"
            )
        # Expecting a stream that cannot exist: JetStream refuses the message without storing
        # it, and its refusal proves the publish reached it (no answer: no right to publish).
        try:
            await js.publish(self.subject, b"", stream="hubsig-check-not-a-stream")
        except nats_js.errors.APIError:
            return
        except Exception as error:
            raise ConfigurationError(
                f"cannot publish to {self.subject} on {self.server} (no answer: check the "
                f"user's publish permissions): {type(error).__name__}"
            ) from None
        raise ConfigurationError(  # pragma: no cover - JetStream always refuses it
            f"JetStream stored a check message in {self.stream}"
        )

    async def _create(self, js: Any) -> Any:
        nats_js = needs("nats.js", "nats")
        if not self.create:
            raise ConfigurationError(f"the JetStream stream {self.stream} does not exist")
        config = nats_js.api.StreamConfig(
            name=self.stream,
            subjects=[self.subject],
            storage=nats_js.api.StorageType.FILE,
            duplicate_window=self.duplicate_window,
        )
        try:
            info = await js.add_stream(config)
        except nats_js.errors.Error as error:
            raise ConfigurationError(
                f"the JetStream stream {self.stream} does not exist and cannot be created: {error}"
            ) from None
        logger.info("created the JetStream stream %s on %s", self.stream, self.subject)
        return info

    def publish(self, delivery: Delivery) -> None:
        """Publish every fresh event and wait for each acknowledgement; raise
        ``PublishUnconfirmed`` unless JetStream stored them all."""
        self.send(messages_of(delivery))

    def send(self, messages: Sequence[SinkMessage]) -> None:
        """Publish ``messages`` and wait for every acknowledgement (what ``publish`` and an
        outbox relay do)."""
        if not messages:
            return
        try:
            self._run(self._publish(messages), self.timeout + 1.0)
        except BodyTooLarge:
            raise
        except Exception as error:
            raise PublishUnconfirmed(
                f"JetStream did not acknowledge the events for {self.stream}: "
                f"{type(error).__name__}: {error}"
            ) from None

    async def _publish(self, messages: Sequence[SinkMessage]) -> None:
        client = await self._connected()
        payloads = [message.to_json() for message in messages]
        largest = max(map(len, payloads))
        if largest > client.max_payload:  # before any is sent: all of the delivery, or none
            raise BodyTooLarge(
                f"an event of this delivery is {largest} bytes as a message, more than the "
                f"NATS server's max_payload of {client.max_payload}"
            )
        js = client.jetstream(timeout=self.timeout)
        await asyncio.gather(
            *(
                js.publish(
                    self.subject,
                    payload,
                    stream=self.stream,
                    headers={
                        "Nats-Msg-Id": message_id(message.key),
                        "X-B3-TraceId": message.trace_id,
                    },
                )
                for message, payload in zip(messages, payloads, strict=True)
            )
        )

    def close(self) -> None:
        """Drain and close the connection, and stop the sink's loop."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._client is not None:
            try:
                loop.run(self._client.close(), self.timeout)
            except Exception:
                logger.warning("could not close the NATS connection cleanly")
        loop.stop()


def message_id(key: str) -> str:
    """The ``Nats-Msg-Id`` of an event: the SHA-256 of its key, in hex.

    Not the key itself: header values are trimmed and their CR and LF made
    spaces on the way, so ``"jx"`` and ``"jx "`` would meet in JetStream's
    duplicate window and the second event, answered 200, would be dropped.
    The digest is the same for the same key, so a republish is still dropped.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
