"""Sinks: hand verified events to a distributed engine instead of running a handler.

A receiver given ``sink=`` claims each delivery's events in its store as
usual, then publishes the fresh ones and answers the sender 200 only once
the engine confirmed them durable; any failure gives the claims back and
answers 503 with ``Retry-After``. Each event travels as one ``SinkMessage``
whose ``key`` is the event's dedupe key, so the workers on the other side
(``hubsig.workers``) process it once with a store of their own.

The engines live in their own modules and import their client only when
built: ``redis_streams.RedisStreamSink`` (``hubsig[redis]``),
``jetstream.JetStreamSink`` (``hubsig[nats]``) and ``celery.CelerySink``
(``hubsig[celery]``). ``sink_from_url`` builds one from the URL
``hubsig serve --to`` takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from hubsig._dedupe import event_keys
from hubsig._sink import Sink
from hubsig.errors import ConfigurationError

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

__all__ = ["Sink", "SinkMessage", "messages_of", "sink_from_url"]


@dataclass(frozen=True, slots=True)
class SinkMessage:
    """One verified event on its way to a worker.

    ``key`` is the event's dedupe key exactly as the stores use it
    (``STARTED:<entity id>``), so a worker claims it in its own store and a
    republished event meets the same key; ``event`` is the event's JSON object
    as the sender signed it (``data.entities[i]``, not re-serialised from the
    model); ``operation_id`` is the delivery's, and ``trace_id`` the sender's
    ``X-B3-TraceId`` (or the one hubsig made), which the worker's log lines carry.
    """

    key: str
    event: dict[str, Any]
    operation_id: str | None
    trace_id: str

    def fields(self) -> dict[str, str]:
        """The message as flat text fields (a Redis stream entry): ``event`` is JSON, a
        missing operation id is the empty string."""
        return {
            "key": self.key,
            "event": json.dumps(self.event, ensure_ascii=False, separators=(",", ":")),
            "operation_id": self.operation_id or "",
            "trace_id": self.trace_id,
        }

    def to_json(self) -> bytes:
        """The message as one JSON object (a NATS message's data, a Celery task's argument)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-ready dict."""
        return {
            "key": self.key,
            "event": self.event,
            "operation_id": self.operation_id,
            "trace_id": self.trace_id,
        }

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> SinkMessage:
        """Read ``fields()`` back (text or bytes, as a Redis client returns them);
        ``ValueError`` names what is missing or malformed."""
        text = {_text(name): _text(value) for name, value in fields.items()}
        missing = [name for name in ("key", "event", "trace_id") if not text.get(name)]
        if missing:
            raise ValueError(f"not a hubsig message: no {', '.join(missing)}")
        event = json.loads(text["event"])
        return cls._checked(text["key"], event, text.get("operation_id") or None, text["trace_id"])

    @classmethod
    def from_json(cls, data: bytes | str) -> SinkMessage:
        """Read ``to_json()`` back; ``ValueError`` when it is not such a message."""
        document = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError("not a hubsig message: not a JSON object")
        return cls.from_dict(document)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SinkMessage:
        """Read ``to_dict()`` back; ``ValueError`` when it is not such a message."""
        return cls._checked(
            document.get("key"),
            document.get("event"),
            document.get("operation_id"),
            document.get("trace_id"),
        )

    @classmethod
    def _checked(cls, key: object, event: object, operation: object, trace: object) -> SinkMessage:
        if not isinstance(key, str) or not key:
            raise ValueError("not a hubsig message: its key is not a non-empty string")
        if not isinstance(event, dict):
            raise ValueError("not a hubsig message: its event is not a JSON object")
        if operation is not None and not isinstance(operation, str):
            raise ValueError("not a hubsig message: its operation_id is not a string")
        if not isinstance(trace, str) or not trace:
            raise ValueError("not a hubsig message: its trace_id is not a non-empty string")
        return cls(key, event, operation, trace)


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def messages_of(delivery: Delivery) -> list[SinkMessage]:
    """One message per fresh event of ``delivery``, in order; an event repeated in the
    delivery once (its first time).

    The keys are those the receiver's store claimed (computed over the delivery
    as it arrived), and each event is its object from the signed body.
    """
    if not delivery.payload.events:
        return []  # nothing to publish (a body may then have no data.entities at all)
    arrived = delivery.arrived if delivery.arrived is not None else delivery.payload
    keys = event_keys(arrived, delivery.body)
    entities = json.loads(delivery.body)["data"]["entities"]
    fresh = {id(event) for event in delivery.payload.events}
    operation_id = delivery.payload.operation_id
    trace_id = delivery.trace.trace_id
    messages: list[SinkMessage] = []
    seen: set[str] = set()
    for position, (event, key) in enumerate(zip(arrived.events, keys, strict=True)):
        if id(event) not in fresh or key in seen:
            continue
        seen.add(key)
        messages.append(SinkMessage(key, entities[position], operation_id, trace_id))
    return messages


def needs(module: str, extra: str) -> Any:
    """Import an engine's client library, or fail with a ``ConfigurationError`` naming the
    extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"this sink needs {module.split('.')[0]}: pip install 'hubsig[{extra}]'"
        ) from None


SCHEMES = ("redis", "rediss", "nats", "tls", "celery+redis", "celery+rediss")
"""The URL schemes ``sink_from_url`` (and ``hubsig serve --to``) understands."""


def sink_from_url(url: str) -> Sink:
    """The sink a URL names; ``ConfigurationError`` when it names none.

    - ``redis://[:PASSWORD@]HOST:PORT/DB?stream=NAME``: ``RedisStreamSink`` (XADD to
      stream ``NAME``);
    - ``nats://HOST:PORT?stream=NAME[&subject=SUBJECT]``: ``JetStreamSink`` (stream
      ``NAME``, created if missing, on subject ``NAME.events`` unless given);
    - ``celery+redis://HOST:PORT/DB?task=NAME``: ``CelerySink`` (one task ``NAME`` per
      event, on a Celery app whose broker is that Redis).

    A password in the URL is held where no ``repr`` shows it.
    """
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"a sink URL starts with redis://, nats:// or celery+redis://, not {scheme or '?'}://"
        )
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if scheme in ("redis", "rediss"):
        from hubsig.sinks.redis_streams import RedisStreamSink

        return RedisStreamSink(bare, _required(query, "stream", "redis://HOST:PORT/DB?stream=NAME"))
    if scheme in ("nats", "tls"):
        from hubsig.sinks.jetstream import JetStreamSink

        stream = _required(query, "stream", "nats://HOST:PORT?stream=NAME")
        return JetStreamSink(bare, stream, subject=query.get("subject"))
    from hubsig.sinks.celery import CelerySink

    broker = bare.split("+", 1)[1]
    task = _required(query, "task", "celery+redis://HOST:PORT/DB?task=NAME")
    return CelerySink.for_broker(broker, task)


def _required(query: Mapping[str, str], name: str, form: str) -> str:
    value = query.get(name)
    if not value:
        raise ConfigurationError(f"the sink URL has no {name}: write {form}")
    return value
