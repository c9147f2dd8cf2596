"""``hubsig serve``: a ready receiver on uvicorn, built from ``@webhook``.

Verifies and parses each delivery, logs one line per event with its trace
id, appends each accepted event to a JSON Lines file once (a SQLite
``DeliveryStore`` remembers processed events across retries, duplicates and
restarts), and answers the seed's ``EventsResponse``. Stops gracefully on
SIGINT/SIGTERM: requests in flight finish, and every event it answered 200
for is in the file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from hubsig._config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_INFLIGHT_BYTES,
    WebhookConfig,
)
from hubsig._endpoint import WebhookEndpoint
from hubsig._event_log import EventLog
from hubsig._models import EventsPayload
from hubsig._receiver import Delivery, json_reply
from hubsig._response import EventsResponse
from hubsig._scheme import Scheme
from hubsig._trace import TraceContext, TraceIdFilter
from hubsig.asgi import Receive, Scope, Send, send_reply
from hubsig.cli.common import (
    UsageError,
    add_scheme_arguments,
    add_secret_arguments,
    need,
    scheme_from,
    secrets_from,
)
from hubsig.stores.sqlite import SQLiteStore

__all__ = ["add_command", "receiver_app"]

logger = logging.getLogger("hubsig.serve")
LISTENING = "hubsig: listening on "


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="run a receiver that verifies, logs and stores")
    add_secret_arguments(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    serve.add_argument("--path", default="/webhooks/interactions", help="the webhook's path")
    serve.add_argument("--out", default="events.jsonl", help="JSON Lines file of accepted events")
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
        help="connections served at once; past it, 503 before anything is read (default 1000)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port and the --store file (default 1)",
    )
    serve.set_defaults(run=run_serve)


def receiver_app(config: WebhookConfig, path: str, log: EventLog) -> WebhookEndpoint | Any:
    """The ASGI app ``serve`` runs: the endpoint at ``path``, a JSON 404 elsewhere."""

    def store(payload: EventsPayload, delivery: Delivery) -> None:
        log.append(delivery)
        for event in payload.events:
            entity = event.entity
            logger.info(
                "accepted %s %s %s id=%s operation=%s",
                getattr(event.event_type, "value", event.event_type),
                getattr(entity.media_type, "value", entity.media_type) if entity else None,
                getattr(entity.interaction_subtype, "value", None) if entity else None,
                entity.id if entity else None,
                payload.operation_id,
            )

    endpoint = WebhookEndpoint(store, config=config)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == path:
            await endpoint(scope, receive, send)
            return
        trace = TraceContext.from_headers(scope.get("headers", []))
        body = EventsResponse(code=404, message=f"no webhook at {scope['path']}").to_json()
        await send_reply(send, json_reply(404, body, trace))

    return app


def run_serve(arguments: argparse.Namespace, stdin: BinaryIO) -> int:
    need("uvicorn")
    import uvicorn

    if arguments.workers < 1:
        raise UsageError("--workers must be at least 1")
    if arguments.workers > 1 and arguments.store == ":memory:":
        raise UsageError(
            "--workers needs a store every worker shares: a SQLite file, not :memory: "
            "(each worker would remember only its own events and process the others' again)"
        )
    options = _worker_options(arguments)
    _configure_logging()
    # IPPROTO_TCP named explicitly: asyncio disables Nagle only on sockets that say so.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((arguments.host, arguments.port))
    listener.listen(2048)
    host, port = listener.getsockname()[:2]
    server_options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "on",
        "access_log": False,
        "limit_concurrency": arguments.max_connections,
    }
    if arguments.workers > 1:
        from uvicorn.supervisors import Multiprocess

        # Spawned workers build their own app from these options (and their own
        # store connection and log file): nothing opened here crosses a process.
        os.environ[WORKER_OPTIONS] = json.dumps(options)
        config = uvicorn.Config(
            f"{__name__}:worker_app", factory=True, workers=arguments.workers, **server_options
        )
        print(f"{LISTENING}http://{host}:{port}{arguments.path}", flush=True)
        logger.info("%d workers writing accepted events to %s", arguments.workers, arguments.out)
        Multiprocess(config, sockets=[listener]).run()
        logger.info("stopped; accepted events are in %s", arguments.out)
        return 0
    app, store, log = _receiver(options)
    server = _quiet_server_class()(uvicorn.Config(app, **server_options))
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, server.handle_exit)
    print(f"{LISTENING}http://{host}:{port}{arguments.path}", flush=True)
    logger.info("writing accepted events to %s", arguments.out)
    try:
        server.run(sockets=[listener])
    finally:
        log.close()
        store.close()
    logger.info("stopped; accepted events are in %s", arguments.out)
    return 0


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
        "out": arguments.out,
        "path": arguments.path,
    }


def _receiver(options: dict[str, Any]) -> tuple[Any, SQLiteStore, EventLog]:
    store = SQLiteStore(options["store"])
    header, algorithms, encoding = options["scheme"]
    config = WebhookConfig(
        secret=options["secrets"],
        scheme=Scheme(header, algorithms, encoding),
        max_body_size=options["max_body_size"],
        body_timeout=options["body_timeout"],
        max_inflight_bytes=options["max_inflight_bytes"],
        store=store,
    )
    log = EventLog(options["out"])
    return receiver_app(config, options["path"], log), store, log


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
