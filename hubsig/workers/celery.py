"""A Celery task decorator that processes each event once: the worker side of ``CelerySink``.

``once_task(app, store=...)`` turns ``handler(event: ClaimedEvent)`` into
a Celery task taking the sink's message. The task is acknowledged late
(``acks_late``, ``reject_on_worker_lost``), so a worker killed mid-task
leaves its message to be delivered again; its ``OnceProcessor`` claims the
event's key first, so that delivery, a republished copy or a retry finds
the event done and does nothing. A handler that fails, or an event another
worker holds right now, is retried (``Task.retry``) after ``retry_delay``; when
even that retry cannot be sent (the broker is away), the message is handed back
(``Reject(requeue=True)``) rather than failed, since Celery acknowledges a failed
late-acknowledged task and its event would be lost.

With a Redis broker, a message whose worker died comes back after the
broker's ``visibility_timeout`` (``broker_transport_options``): set it to
a little more than your longest task, not Celery's default hour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hubsig._dedupe import DedupePolicy, DeliveryStore
from hubsig._log_text import escaped
from hubsig.sinks import SinkMessage, needs
from hubsig.workers import ClaimedEvent, OnceProcessor, Verdict

__all__ = ["once_task"]

logger = logging.getLogger("hubsig.worker")


def once_task(
    app: Any,
    *,
    store: DeliveryStore,
    name: str | None = None,
    policy: DedupePolicy | None = None,
    retry_delay: float = 1.0,
    **task_options: Any,
) -> Callable[[Callable[[ClaimedEvent], object]], Any]:
    """Decorate ``handler(event)`` into the Celery task ``name`` (the handler's name by
    default) of ``app``, run once per event with ``store``.

    The store is checked now, so a worker whose store can never work stops
    as it imports its tasks. ``task_options`` go to ``app.task``.
    """
    exceptions = needs("celery.exceptions", "celery")

    def decorate(handler: Callable[[ClaimedEvent], object]) -> Any:
        processor = OnceProcessor(store, handler, policy=policy)

        def run(task: Any, message: dict[str, Any]) -> str:
            try:
                received = SinkMessage.from_dict(message)
            except (ValueError, AttributeError) as error:
                logger.error(
                    "task %s got something that is not a hubsig message (%s); dropped",
                    task.name,
                    error,
                )
                return "malformed"
            verdict = processor.process(received)
            if verdict.acknowledge:
                return verdict.value
            busy = verdict is Verdict.BUSY
            countdown = processor.policy.lease / 3 if busy else retry_delay
            try:
                raise task.retry(countdown=countdown, max_retries=None)
            except exceptions.Retry:
                raise
            except Exception as error:
                # The retry could not be sent (the broker is away): a failed task would be
                # acknowledged and its event lost, so the message is handed back instead.
                logger.warning(
                    "could not schedule a retry of key=%s (%s); handing the message back",
                    escaped(received.key),
                    type(error).__name__,
                )
                raise exceptions.Reject(requeue=True) from None

        run.__name__ = handler.__name__
        run.__qualname__ = getattr(handler, "__qualname__", handler.__name__)
        run.__module__ = handler.__module__
        run.__doc__ = handler.__doc__
        options = {
            "bind": True,
            "acks_late": True,
            "reject_on_worker_lost": True,
            "ignore_result": True,
            **task_options,
        }
        return app.task(name=name or handler.__name__, **options)(run)

    return decorate
