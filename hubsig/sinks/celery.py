"""A sink that sends one Celery task per fresh event, its task id the event's key.

The task gets one argument, the ``SinkMessage`` as a dict (``key``,
``event``, ``operation_id``, ``trace_id``); on the worker side,
``hubsig.workers.celery.once_task`` defines such a task and runs it once
per event. One task per event (not per delivery) so a fleet of workers
shares a large delivery and a failing event is retried alone.

"Durable" is the broker's: the sink returns once the broker took every
message (a Redis ``LPUSH`` answered; with RabbitMQ, publisher confirms,
which ``CelerySink.for_broker`` turns on). A Redis broker must persist
(``appendonly yes``, ``appendfsync always``): ``check()`` refuses one that
keeps its data in memory only, as the Redis stream sink does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hubsig.errors import ConfigurationError, PublishUnconfirmed
from hubsig.sinks import SinkMessage, messages_of, needs

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["CelerySink"]

logger = logging.getLogger("hubsig")

TIMEOUT = 5.0
"""Seconds to reach the broker before a delivery is answered 503."""
RETRY_POLICY = {"max_retries": 2, "interval_start": 0.0, "interval_step": 0.2, "interval_max": 0.5}
"""Celery's own publish retries, kept short: the sender retries a 503 anyway, and a receiver
must not hold a request (and its claims) for long while the broker is away."""


class CelerySink:
    """Sends task ``task`` of the Celery ``app`` once per fresh event.

    ``queue`` routes the tasks (the app's routing decides without it).
    ``durable=False`` accepts a Redis broker that keeps its data in memory.
    """

    blocking = True
    """Its calls wait on the broker: async receivers run them in a worker thread."""

    def __init__(
        self, app: Any, task: str, *, queue: str | None = None, durable: bool = True
    ) -> None:
        needs("celery", "celery")
        if not task:
            raise ConfigurationError("CelerySink needs the name of the task to send")
        self.app = app
        self.task = task
        self.queue = queue
        self.durable = durable

    @classmethod
    def for_broker(cls, broker: str, task: str, **options: Any) -> CelerySink:
        """A sink on a Celery app of its own whose broker is ``broker`` (a Redis or AMQP URL)."""
        celery = needs("celery", "celery")
        app = celery.Celery("hubsig-sink", broker=broker, set_as_current=False)
        app.conf.broker_connection_timeout = TIMEOUT
        app.conf.broker_connection_retry_on_startup = False
        app.conf.task_publish_retry_policy = RETRY_POLICY
        if urlsplit(broker).scheme.startswith(("amqp", "pyamqp")):
            app.conf.broker_transport_options = {"confirm_publish": True}
        else:
            app.conf.broker_transport_options = {
                "socket_timeout": TIMEOUT,
                "socket_connect_timeout": TIMEOUT,
            }
        return cls(app, task, **options)

    def __repr__(self) -> str:
        return f"CelerySink(task={self.task!r})"

    def publish(self, delivery: Delivery) -> None:
        """Send one task per fresh event; ``PublishUnconfirmed`` unless the broker took all."""
        self.send(messages_of(delivery))

    def send(self, messages: Sequence[SinkMessage]) -> None:
        """Send one task per message (what ``publish`` and an outbox relay do)."""
        if not messages:
            return
        try:
            with self.app.producer_or_acquire() as producer:
                for message in messages:
                    self.app.send_task(
                        self.task,
                        args=(message.to_dict(),),
                        task_id=message.key,
                        queue=self.queue,
                        producer=producer,
                        retry=True,
                        retry_policy=RETRY_POLICY,
                        headers={"X-B3-TraceId": message.trace_id},
                    )
        except Exception as error:
            raise PublishUnconfirmed(
                f"the Celery broker did not take the tasks {self.task}: "
                f"{type(error).__name__}: {error}"
            ) from None

    def check(self) -> None:
        """``ConfigurationError`` unless the broker answers (and, for a Redis broker,
        persists its data and never evicts it)."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT
                )
                url = connection.as_uri(include_password=True)
        except Exception as error:
            raise ConfigurationError(
                f"the Celery sink cannot reach its broker: {type(error).__name__}: {error}"
            ) from None
        if urlsplit(url).scheme in ("redis", "rediss"):
            from hubsig.sinks.redis_streams import check_persistence, redis_client

            redis = needs("redis", "redis")
            client = redis_client(url)
            try:
                check_persistence(client, (redis.RedisError, OSError), self.durable)
            finally:
                client.close()
