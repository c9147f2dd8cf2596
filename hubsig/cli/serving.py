"""``hubsig serve``: a ready receiver on uvicorn, built from ``@webhook``.

Verifies and parses each delivery, logs one line per event with its trace
id, appends each accepted event to a JSON Lines file once, and answers the
seed's ``EventsResponse``. Each event's line is written in the transaction
that marks it processed in the SQLite store (a journal table), then
exported to the file before the 200 goes out; so ``kill -9`` at any instant
neither loses an acknowledged line nor writes one twice, and the next start
exports whatever a killed worker committed but had not written yet. The store
records what was exported, so a rotated (renamed) file is followed by a new
one with only new lines. Connections waiting for a request head have a
deadline (``head_deadline``).

With ``--to URL`` it writes no file: it hands each delivery's fresh events
to a sink (``hubsig.sinks.sink_from_url``: a Redis stream, a JetStream
stream, Celery tasks), still claiming them in ``--store`` first, and answers
200 once the engine confirmed them durable, 503 with ``Retry-After`` when not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import os
import resource
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from hubsig._config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_INFLIGHT_BYTES,
    WebhookConfig,
)
from hubsig._dedupe import DedupePolicy, StoreUnavailable
from hubsig._delivery import Delivery
from hubsig._endpoint import WebhookEndpoint
from hubsig._log_text import escaped
from hubsig._models import EventsPayload
from hubsig._replies import json_reply
from hubsig._response import EventsResponse
from hubsig._scheme import Scheme
from hubsig._trace import TraceContext, TraceIdFilter
from hubsig.cli.event_log import EventLog
from hubsig.cli.journal import JournalExport, JournalMismatch, journal
from hubsig.cli.options import (
    DefaultsShown,
    add_scheme_arguments,
    add_secret_arguments,
    need,
    positive_seconds,
    scheme_from,
    secrets_from,
    sink_url,
)
from hubsig.cli.telemetry import start_telemetry
from hubsig.errors import ConfigurationError, UsageError
from hubsig.kit.asgi import Message, Receive, Scope, Send, send_reply
from hubsig.sinks import Sink as EventSink
from hubsig.stores.sqlite import SQLiteStore

__all__ = ["add_command", "receiver_app"]

logger = logging.getLogger("hubsig.serve")
LISTENING = "hubsig: listening on "


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="run a receiver that verifies, logs and stores", formatter_class=DefaultsShown
    )
    add_secret_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    serve.add_argument("--path", default="/webhooks/interactions", help="the webhook's path")
    serve.add_argument("--out", default="events.jsonl", help="JSON Lines file of accepted events")
    serve.add_argument(
        "--to",
        metavar="URL",
        type=sink_url,
        help="hand accepted events to an engine instead of --out, answering 200 once it made "
        "them durable: redis://HOST:PORT/DB?stream=NAME, nats://HOST:PORT?stream=NAME "
        "(subject NAME.events) or celery+redis://HOST:PORT/DB?task=NAME",
    )
    serve.add_argument(
        "--outbox",
        action="store_true",
        help="with --to: record accepted events in an outbox table of --store, in the "
        "transaction that marks them processed, and relay them to the engine from a thread of "
        "this process; the 200 then waits for the store only, not for the engine",
    )
    serve.add_argument(
        "--store",
        default="hubsig-events.db",
        help="SQLite file remembering processed events, so each is stored once across "
        "retries, duplicates, replays and restarts",
    )
    add_scheme_arguments(serve, many_algorithms=True)
    serve.add_argument(
        "--max-body-size", type=int, default=DEFAULT_MAX_BODY_SIZE, help="bytes (default 1 MiB)"
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help="seconds a body may take to arrive before it is refused with 408 (default 10)",
    )
    serve.add_argument(
        "--max-inflight-bytes",
        type=int,
        default=DEFAULT_MAX_INFLIGHT_BYTES,
        help="body bytes held across all requests being read; past it, 503 (default 64 MiB)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="requests served at once; past it, 503 before the body is read. Connections "
        "waiting for a request head do not count (default 1000)",
    )
    serve.add_argument(
        "--header-timeout",
        type=positive_seconds,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="seconds from accepting a connection, or from its previous response, to a "
        "complete request head; a connection that misses it is closed, and a head over 16 KiB "
        "is refused (default 5)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=positive_seconds,
        default=DEFAULT_KEEP_ALIVE_TIMEOUT,
        metavar="SECONDS",
        help="an idle keep-alive connection is closed after this many seconds without a byte "
        "(and, like any, if its next head is not complete within --header-timeout) (default 5)",
    )
    serve.add_argument(
        "--max-waiting-connections",
        type=int,
        default=DEFAULT_MAX_WAITING,
        metavar="N",
        help="connections waiting for a request head at once (new, slow or idle keep-alive); "
        "past it, the one that has waited longest is closed (default 2000)",
    )
    serve.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="uvicorn's HTTP/1.1 parser; auto is httptools when installed (default auto)",
    )
    serve.add_argument(
        "--lease",
        type=float,
        default=SERVE_LEASE,
        help="seconds a claim lasts unless renewed (every third of it, while a handler runs): "
        "after a crash, its events wait this long before they are redelivered (default 15)",
    )
    serve.add_argument(
        "--otel",
        choices=("console", "otlp"),
        help="record OpenTelemetry spans and metrics, printed (console) or sent by OTLP/HTTP to "
        "$OTEL_EXPORTER_OTLP_ENDPOINT (needs opentelemetry-sdk)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port, on --host (needs "
        "opentelemetry-exporter-prometheus; one worker only)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port and the --store file (default 1)",
    )
    serve.set_defaults(run=run_serve)


class Sink:
    """Where ``serve`` puts accepted events: journalled in the store file and exported to
    ``out``, or, with an in-memory store (nothing survives a crash anyway), appended; with
    ``out`` None (``--to``), nowhere: the receiver's ``sink=`` publishes them instead."""

    def __init__(
        self,
        store: SQLiteStore,
        out: str | None,
        retention: float | None = None,
        published: PublishedEvents | None = None,
    ) -> None:
        self.store = store
        self.stop_telemetry: Callable[[], None] = lambda: None
        self.export: JournalExport | None = None
        self.log: EventLog | None = None
        self.published = published
        if out is None:
            return
        if str(store.path) == ":memory:":
            self.log = EventLog(out)
        else:
            self.export = JournalExport(store.path, out, retention)

    def write(self, delivery: Delivery) -> None:
        if self.published is not None:  # pragma: no cover - the sink takes the events
            raise RuntimeError("with --to, events go to the sink, not to the handler")
        if self.log is not None:
            self.log.append(delivery)
        else:
            journal(self.store.transaction(delivery), delivery)

    async def flush(self) -> None:
        """Export what was committed, before a 200 promises it is in the file."""
        if self.export is None:
            return
        try:
            await asyncio.to_thread(self.export.run)
        except (OSError, sqlite3.Error, JournalMismatch) as error:
            logger.error(
                "could not write accepted events to %s (%s); they are kept in the store and "
                "written by the next export",
                self.export.out,
                error,
            )

    def close(self) -> None:
        self.stop_telemetry()
        if self.published is not None:
            self.published.close()
        if self.log is not None:
            self.log.close()
        if self.export is not None:
            self.export.close()


def log_field(value: str | None) -> str:
    """A string from a signed body as one field of a log line.

    Control characters are escaped (``_log_text.escaped``), and a value with a
    space, a quote or ``=``, or an empty one, is quoted: so a body forges
    neither a line (``\\n``, ``\\r``, U+2028), nor a terminal escape, nor another field.
    """
    text = escaped(str(value))
    if text and not any(char in text for char in ' "='):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def receiver_app(config: WebhookConfig, path: str, sink: Sink) -> WebhookEndpoint | Any:
    """The ASGI app ``serve`` runs: the endpoint at ``path``, a JSON 404 elsewhere."""

    def store(payload: EventsPayload, delivery: Delivery) -> None:
        sink.write(delivery)
        for event in payload.events:
            entity = event.entity
            fields = (
                getattr(event.event_type, "value", event.event_type),
                getattr(entity.media_type, "value", entity.media_type) if entity else None,
                getattr(entity.interaction_subtype, "value", entity.interaction_subtype)
                if entity
                else None,
                entity.id if entity else None,
                payload.operation_id,
            )
            logger.info("accepted %s %s %s id=%s operation=%s", *map(log_field, fields))

    endpoint = WebhookEndpoint(store, config=config)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await endpoint(scope, receive, send)
            return
        if scope["path"] == path:

            async def exported_first(message: Message) -> None:
                if message["type"] == "http.response.start" and message["status"] == 200:
                    await sink.flush()
                await send(message)

            await endpoint(scope, receive, exported_first)
            return
        trace = TraceContext.from_headers(scope.get("headers", []))
        body = EventsResponse(code=404, message=f"no webhook at {scope['path']}").to_json()
        await send_reply(send, json_reply(404, body, trace))

    return app


def run_serve(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    need("uvicorn")

    if arguments.workers < 1:
        raise UsageError("--workers must be at least 1")
    if arguments.max_connections < 1 or arguments.max_waiting_connections < 1:
        raise UsageError("--max-connections and --max-waiting-connections must be at least 1")
    if not arguments.lease > 0:
        raise UsageError("--lease must be a positive number of seconds")
    if arguments.metrics_port is not None and not 0 < arguments.metrics_port < 65536:
        raise UsageError("--metrics-port must be a port number, 1 to 65535")
    if arguments.metrics_port is not None and arguments.workers > 1:
        raise UsageError("--metrics-port serves one process's metrics: use it with one worker")
    if arguments.outbox and arguments.to is None:
        raise UsageError("--outbox relays to the engine --to names: give --to URL too")
    if arguments.outbox and arguments.store == ":memory:":
        raise UsageError("--outbox needs a --store file, whose transactions it writes in")
    if arguments.workers > 1 and arguments.store == ":memory:":
        raise UsageError(
            "--workers needs a store every worker shares: a SQLite file, not :memory: "
            "(each worker would remember only its own events and process the others' again)"
        )
    options = _worker_options(arguments)
    listener = _listen(arguments.host, arguments.port)  # before any file is created
    try:
        return _serve(arguments, options, listener)
    finally:
        listener.close()


def _serve(arguments: argparse.Namespace, options: dict[str, Any], listener: socket.socket) -> int:
    _configure_logging()
    catch_up = None
    if arguments.to is None:
        with _start_up_errors(arguments.store, arguments.out):
            catch_up = _catch_up(arguments.store, arguments.out)
    server_options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "on",
        "access_log": False,
        "http": _guarded_protocol(arguments),
        "ws": "none",
        "timeout_keep_alive": arguments.keep_alive_timeout,
    }
    _make_room_for_files(arguments.max_connections + arguments.max_waiting_connections)
    stop_relay = _start_relay(arguments.to, arguments.store) if arguments.outbox else None
    try:
        return _run_server(arguments, options, listener, server_options, catch_up)
    finally:
        if stop_relay is not None:
            stop_relay()


def _run_server(
    arguments: argparse.Namespace,
    options: dict[str, Any],
    listener: socket.socket,
    server_options: dict[str, Any],
    catch_up: JournalExport | None,
) -> int:
    import uvicorn

    host, port = listener.getsockname()[:2]
    if arguments.workers > 1:
        from uvicorn.supervisors import Multiprocess

        # Spawned workers build their own app from these options (and their own
        # store connection and log file): nothing opened here crosses a process.
        os.environ[WORKER_OPTIONS] = json.dumps(options)
        config = uvicorn.Config(
            f"{__name__}:worker_app", factory=True, workers=arguments.workers, **server_options
        )
        print(f"{LISTENING}http://{host}:{port}{arguments.path}", flush=True)
        logger.info(
            "%d workers handing accepted events to %s",
            arguments.workers,
            _destination(arguments.to, arguments.out),
        )
        Multiprocess(config, sockets=[listener]).run()
        _export_rest(catch_up)
        if catch_up is not None:
            catch_up.close()
        _log_stopped(arguments)
        return 0
    if catch_up is not None:
        catch_up.close()
    with _start_up_errors(arguments.store, arguments.out):
        app, store, sink = _receiver(options)
    server = _quiet_server_class()(uvicorn.Config(app, **server_options))
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, server.handle_exit)
    print(f"{LISTENING}http://{host}:{port}{arguments.path}", flush=True)
    logger.info("handing accepted events to %s", _destination(arguments.to, arguments.out))
    try:
        server.run(sockets=[listener])
    finally:
        _export_rest(sink.export)
        sink.close()
        store.close()
    _log_stopped(arguments)
    return 0


DEFAULT_HEADER_TIMEOUT = 5.0
"""A genuine sender's head arrives in milliseconds; 5 s leaves room for a slow network."""

DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0
"""uvicorn's own default: long enough for a sender's next delivery to reuse the connection."""

DEFAULT_MAX_WAITING = 2000
"""Twice ``--max-connections``'s default; with those, about 3,000 open files (``ulimit -n``)."""

SERVE_LEASE = 15.0
"""``serve``'s claims last 15 s: renewal keeps a slow handler's, and a crash's wait is short."""

WORKER_OPTIONS = "HUBSIG_SERVE_WORKER"
"""The environment variable through which ``serve --workers`` hands its options to workers."""


def _worker_options(arguments: argparse.Namespace) -> dict[str, Any]:
    """Everything a receiver is built from, as JSON a spawned worker can read."""
    scheme = scheme_from(arguments)
    return {
        "secrets": secrets_from(arguments),
        "scheme": [scheme.header, list(scheme.algorithms), scheme.encoding],
        "max_body_size": arguments.max_body_size,
        "body_timeout": arguments.body_timeout,
        "max_inflight_bytes": arguments.max_inflight_bytes,
        "store": arguments.store,
        "lease": arguments.lease,
        "otel": arguments.otel,
        "metrics_port": arguments.metrics_port,
        "host": arguments.host,
        "out": arguments.out,
        "path": arguments.path,
        "to": arguments.to,
        "outbox": arguments.outbox,
    }


def _log_stopped(arguments: argparse.Namespace) -> None:
    if arguments.to is None:
        logger.info("stopped; accepted events are in %s", arguments.out)
    else:
        logger.info("stopped; accepted events went to %s", hidden_password(arguments.to))


def _destination(to: str | None, out: str) -> str:
    """Where accepted events go, for a log line: the sink URL without its password."""
    return out if to is None else hidden_password(to)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket; a usage error (one line, exit 2) when it cannot be had."""
    # IPPROTO_TCP named explicitly: asyncio disables Nagle only on sockets that say so.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except (OSError, OverflowError, ValueError) as error:  # in use, unresolvable, out of range
        listener.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(f"cannot listen on {host} port {port}: {reason}") from None
    return listener


@contextlib.contextmanager
def _start_up_errors(store: str, out: str) -> Iterator[None]:
    """The store or the ``--out`` file failing at start-up: a usage error, not a traceback,
    and the files this start created removed again."""
    files = [Path(out)]
    if store != ":memory:":
        files += [Path(store + suffix) for suffix in ("", "-wal", "-shm")]
    new = [path for path in files if not path.exists()]
    try:
        yield
    except (StoreUnavailable, sqlite3.Error, OSError, UsageError) as error:
        for path in new:
            path.unlink(missing_ok=True)
        if isinstance(error, UsageError):
            raise
        if isinstance(error, OSError):
            name = error.filename if error.filename is not None else out
            raise UsageError(f"cannot open {name}: {error.strerror or error}") from None
        raise UsageError(f"cannot use the store {store}: {error}") from None


def _guarded_protocol(arguments: argparse.Namespace) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a deadline for each request head (``head_deadline``)."""
    from hubsig.cli.head_deadline import HeadDeadlines, protocol_classes

    protocol = protocol_classes().get(arguments.http)
    if protocol is None:
        raise UsageError("--http httptools needs httptools: pip install httptools")
    deadlines = HeadDeadlines(
        arguments.header_timeout, arguments.max_waiting_connections, arguments.max_connections
    )
    # uvicorn calls it as it calls a protocol class; a partial pickles for --workers.
    return cast("type[asyncio.Protocol]", functools.partial(protocol, deadlines=deadlines))


def _make_room_for_files(connections: int) -> None:
    """Raise the soft limit on open files so ``connections`` sockets fit (as the hard limit
    allows): past it, accepting fails and even genuine deliveries wait."""
    needed = connections + 256  # the store, the log, the listener, uvicorn's own
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    room = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if room > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (room, hard))
    if room < needed:
        logger.warning(
            "only %d open files allowed (ulimit -n): fewer connections than "
            "--max-connections plus --max-waiting-connections fit",
            room,
        )


def _catch_up(store: str, out: str) -> JournalExport | None:
    """Export what an earlier, killed run committed but had not written to ``out``."""
    if store == ":memory:":
        return None
    SQLiteStore(store).close()  # creates the file and its tables if new
    export = JournalExport(store, out, DedupePolicy().retention)
    try:
        caught_up = export.run()
    except JournalMismatch as error:
        export.close()
        raise UsageError(
            f"{error}. To start fresh, move {out} away (or give another --out); to go on "
            f"writing it, give the --store it was written with"
        ) from None
    if caught_up:
        logger.info("wrote %d accepted events a stopped run had not written yet", caught_up)
    return export


def _export_rest(export: JournalExport | None) -> None:
    if export is not None:
        try:
            export.run()
        except (OSError, sqlite3.Error, JournalMismatch) as error:
            logger.error("could not write the last accepted events to %s: %s", export.out, error)


def _receiver(options: dict[str, Any]) -> tuple[Any, SQLiteStore, Sink]:
    store = SQLiteStore(options["store"])
    event_sink = None
    if options.get("to") and options.get("outbox"):
        event_sink = _outbox_for(options["to"], store)
    elif options.get("to"):
        event_sink = _sink_for(options["to"], store)
    header, algorithms, encoding = options["scheme"]
    config = WebhookConfig(
        secret=options["secrets"],
        scheme=Scheme(header, algorithms, encoding),
        max_body_size=options["max_body_size"],
        body_timeout=options["body_timeout"],
        max_inflight_bytes=options["max_inflight_bytes"],
        store=store,
        sink=event_sink,
        dedupe=DedupePolicy(lease=options["lease"]),
    )
    out = options["out"] if event_sink is None else None
    sink = Sink(store, out, config.dedupe.retention, event_sink)
    sink.stop_telemetry = start_telemetry(options["otel"], options["metrics_port"], options["host"])
    return receiver_app(config, options["path"], sink), store, sink


def worker_app() -> Any:
    """One worker of ``serve --workers N``: the receiver, built from the parent's options."""
    _configure_logging()
    app, _, _ = _receiver(json.loads(os.environ[WORKER_OPTIONS]))
    return app


def _quiet_server_class() -> type[Any]:
    import uvicorn

    class QuietlyStoppingServer(uvicorn.Server):
        """uvicorn's server, with SIGINT/SIGTERM handled by ``serve`` itself.

        uvicorn re-raises a stop signal once it has shut down, which ends the
        process with status 143 before the store is closed or the last line
        logged; ``serve`` installs the handlers before it says it listens, so
        an early signal stops it cleanly too.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietlyStoppingServer


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s trace=%(trace_id)s %(name)s: %(message)s")
    )
    root = logging.getLogger("hubsig")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class PublishedEvents:
    """The ``--to`` sink, saying at INFO what it published (one line per delivery)."""

    def __init__(self, sink: EventSink, url: str, verb: str = "published") -> None:
        self.sink = sink
        self.blocking = sink.blocking
        self.url = hidden_password(url)
        self.verb = verb

    def check(self) -> Any:
        return self.sink.check()

    def publish(self, delivery: Delivery) -> None:
        self.sink.publish(delivery)
        ids = delivery.payload.entity_ids
        logger.info(
            "%s %d events to %s ids=%s",
            self.verb,
            len(ids),
            self.url,
            ",".join(map(log_field, ids)),
        )

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()


def _sink_for(url: str, store: SQLiteStore) -> PublishedEvents:
    """The ``--to`` sink, checked: one that can never work is a usage error at start-up."""
    from hubsig.sinks import sink_from_url

    try:
        sink = sink_from_url(url)
        sink.check()
    except ConfigurationError as error:
        store.close()
        raise UsageError(f"cannot use --to {hidden_password(url)}: {error}") from None
    return PublishedEvents(sink, url)


def hidden_password(url: str) -> str:
    """``url`` with everything before its host's ``@`` (a user, a password, a token) shown
    as ``***``; up to the last ``@``, so a password with an unencoded ``/``, ``#`` or
    ``?`` is hidden whole too."""
    scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _outbox_for(url: str, store: SQLiteStore) -> PublishedEvents:
    """The ``--to URL --outbox`` sink of a receiver: rows in its store's transaction."""
    from hubsig.sinks.outbox import OutboxSink

    try:
        outbox = OutboxSink(store)
        outbox.check()
    except ConfigurationError as error:
        store.close()
        raise UsageError(f"cannot use --outbox: {error}") from None
    return PublishedEvents(outbox, url, "recorded in the outbox")


def _start_relay(url: str, path: str) -> Callable[[], None]:
    """Relay ``--store``'s outbox to ``--to`` in a thread of this (the parent) process, one
    relay per file; returns what stops it. The engine is checked first, as without it."""
    import threading

    from hubsig.sinks.outbox import OutboxRelay, OutboxSink

    store = SQLiteStore(path)
    engine = _sink_for(url, store)
    OutboxSink(store).check()
    relay = OutboxRelay(store, cast("Any", engine.sink))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), name="hubsig-outbox", daemon=True)
    thread.start()
    logger.info("relaying the outbox of %s to %s", path, engine.url)

    def stopping() -> None:
        stop.set()
        thread.join(timeout=30)
        waiting = relay.pending()
        if waiting:
            logger.warning("%d events wait in the outbox; the next start relays them", waiting)
        engine.close()
        store.close()

    return stopping
