"""Receivers that do the same job, end to end: ``python -m benchmarks.receivers [SECONDS]``.

Each receiver verifies the signature over the raw body, parses the events
and answers their ids in the seed's response shape, in its own process under
a real server, driven by wrk (``apt-get install wrk``) from another process:
interleaved rounds, each receiver's ratio to the hand-written receiver of its
framework the median of the rounds' ratios (each round against the hand-written
receiver's own figure in that round). Prints a Markdown table and writes JSON to
``benchmarks/results/receivers.json``.

Receivers (``python -m benchmarks.receivers serve NAME PORT SERVER`` runs
one): ``fastapi-hand`` (``hmac.new(...).hexdigest()``, ``compare_digest``,
``json.loads``), ``fastapi-pydantic`` (``model_validate_json``), ``fastapi-
middleware`` (``HubSignatureMiddleware``), ``fastapi-dependency``
(``VerifiedDelivery``), ``fastapi-route`` (the documented recipe: a route of
``hubsig.fastapi.verified_router``, included in the app),
``fastapi-route-app`` (that class for one route on the app itself,
``route_class_override``), ``fastapi-hand-router`` (the hand-written
receiver on an included ``APIRouter``, the route recipe's like-for-like),
``webhook`` (``@hubsig.webhook`` with its in-memory dedupe: wrk repeats one
body, so every request after the first is a duplicate, acknowledged without
the handler), ``webhook-fresh`` (the same with a store that remembers nothing,
so every request is processed as new), ``asgi-middleware`` (the middleware
around a bare ASGI app); servers ``uvicorn`` (httptools), ``uvicorn-h11`` and
``granian`` when installed.
And under gunicorn (one sync worker), each framework's receivers compared with
its own hand-written one: ``flask-hand`` (the same hand-written check in a
Flask view) and ``flask-hubsig`` (``hubsig.flask``'s ``webhook_view``);
``django-hand`` (the same check in a plain Django view, ``@csrf_exempt`` and
``@require_POST``) and ``django-hubsig`` (``hubsig.django``'s
``webhook_view``), both behind the default middleware of a new Django
project (``benchmarks/django_receiver.py`` says what it configures). The
hubsig receivers keep their default in-memory dedupe, as ``webhook`` does.
"""

# No "from __future__ import annotations": FastAPI reads the routes' annotations at run time,
# and they name classes imported inside build().

import hmac
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bodies import SECRET, events_body

SIZE = 4096
RECEIVERS = (
    "fastapi-hand",
    "fastapi-hand-router",
    "fastapi-pydantic",
    "fastapi-middleware",
    "fastapi-dependency",
    "fastapi-route",
    "fastapi-route-app",
    "webhook",
    "webhook-fresh",
    "asgi-middleware",
)
WSGI_RECEIVERS = ("flask-hand", "flask-hubsig", "django-hand", "django-hubsig")
KEY = SECRET if isinstance(SECRET, bytes) else SECRET.encode()


def _signed(body: bytes, header: str) -> bool:
    """What a user writes by hand: the hex digest as a string, compared in constant time."""
    return hmac.compare_digest("sha1=" + hmac.new(KEY, body, "sha1").hexdigest(), header)


def _answer(ids: list[str]) -> dict[str, Any]:
    return {"status": {"code": 0, "message": "OK"}, "data": {"ids": [{"id": i} for i in ids]}}


def build(name: str) -> Any:
    """The ASGI app of receiver ``name``."""
    import hubsig

    if name.startswith("webhook"):
        return _webhook({} if name == "webhook" else {"store": _Forgetful()})
    if name == "asgi-middleware":
        from hubsig.asgi import HubSignatureMiddleware

        return HubSignatureMiddleware(_bare, secret=SECRET)
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    app = FastAPI()
    if name in ("fastapi-hand", "fastapi-hand-router"):
        from fastapi import APIRouter

        router = APIRouter() if name == "fastapi-hand-router" else app.router

        @router.post("/hook")
        async def hand(request: Request) -> Response:
            body = await request.body()
            if not _signed(body, request.headers.get("x-hub-signature", "")):
                return JSONResponse({"status": {"code": 401, "message": "bad"}}, 401)
            document = json.loads(body)
            ids = [e["entity"]["id"] for e in document["data"]["entities"]]
            return JSONResponse(_answer(ids))

        if router is not app.router:
            app.include_router(router)

    elif name == "fastapi-pydantic":
        from pydantic import BaseModel, Field

        class Entity(BaseModel):
            id: str | None = None
            media_type: str | None = Field(None, alias="mediaType")

        class Event(BaseModel):
            event: str | None = None
            entity: Entity | None = None

        class Data(BaseModel):
            entities: list[Event] = []

        class Payload(BaseModel):
            operation_id: str | None = Field(None, alias="operationId")
            data: Data | None = None

        @app.post("/hook")
        async def typed(request: Request) -> Response:
            body = await request.body()
            if not _signed(body, request.headers.get("x-hub-signature", "")):
                return JSONResponse({"status": {"code": 401, "message": "bad"}}, 401)
            payload = Payload.model_validate_json(body)
            events = payload.data.entities if payload.data else []
            return JSONResponse(_answer([e.entity.id for e in events if e.entity and e.entity.id]))

    elif name == "fastapi-middleware":
        from hubsig.asgi import HubSignatureMiddleware

        app.add_middleware(HubSignatureMiddleware, secret=SECRET)

        @app.post("/hook")
        async def guarded(request: Request) -> Response:
            delivery = hubsig.delivery_of(request)
            return JSONResponse(_answer(list(delivery.payload.entity_ids)))

    elif name == "fastapi-dependency":
        from typing import Annotated

        from fastapi import Depends

        from hubsig.fastapi import VerifiedDelivery

        verified = VerifiedDelivery(secret=SECRET)

        @app.post("/hook")
        async def depends(delivery: Annotated[hubsig.Delivery, Depends(verified)]) -> Response:
            return JSONResponse(_answer(list(delivery.payload.entity_ids)))

    elif name == "fastapi-route":
        from hubsig.fastapi import Verified, verified_router

        webhooks = verified_router(secret=SECRET)

        @webhooks.post("/hook")
        async def routed(delivery: Verified) -> Response:
            return JSONResponse(_answer(list(delivery.payload.entity_ids)))

        app.include_router(webhooks)

    elif name == "fastapi-route-app":
        from hubsig.fastapi import Verified, verified_route

        async def on_the_app(delivery: Verified) -> Response:
            return JSONResponse(_answer(list(delivery.payload.entity_ids)))

        route_class = verified_route(secret=SECRET)
        app.router.add_api_route(
            "/hook", on_the_app, methods=["POST"], route_class_override=route_class
        )

    else:
        raise SystemExit(f"no receiver {name!r}")
    return app


def build_wsgi(name: str) -> Any:
    """The WSGI app of Flask or Django receiver ``name``."""
    if name.startswith("django-"):
        from benchmarks.django_receiver import build as build_django

        return build_django(name)
    from flask import Flask, request

    import hubsig

    app = Flask(__name__)
    if name == "flask-hand":

        @app.post("/hook")
        def hand() -> Any:
            body = request.get_data()
            if not _signed(body, request.headers.get("x-hub-signature", "")):
                return {"status": {"code": 401, "message": "bad"}}, 401
            document = json.loads(body)
            return _answer([e["entity"]["id"] for e in document["data"]["entities"]])

    elif name == "flask-hubsig":
        from hubsig.flask import webhook_view

        @app.post("/hook")
        @webhook_view(secret=SECRET)
        def guarded() -> Any:
            return _answer(list(hubsig.delivery_of(request).payload.entity_ids))

    else:
        raise SystemExit(f"no receiver {name!r}")
    return app


def wsgi_app(environ: Any, start_response: Any) -> Any:
    """The WSGI receiver named by ``$HUBSIG_RECEIVER``, for gunicorn."""
    global _WSGI_APP
    if _WSGI_APP is None:
        _WSGI_APP = build_wsgi(os.environ["HUBSIG_RECEIVER"])
    return _WSGI_APP(environ, start_response)


_WSGI_APP: Any = None


def _webhook(options: dict[str, Any]) -> Any:
    import hubsig

    @hubsig.webhook(secret=SECRET, **options)
    async def hook(payload: hubsig.EventsPayload) -> None:
        return None

    return hook


class _Forgetful:
    """A store that remembers nothing: every event is new, every time."""

    blocking = False

    def claim(self, keys: Any, lease: float, token: str) -> list[Any]:
        from hubsig import Claim

        return [Claim.CLAIMED] * len(keys)

    def complete(self, keys: Any, retention: float, token: str) -> None:
        return None

    def release(self, keys: Any, token: str) -> None:
        return None

    def renew(self, keys: Any, lease: float, token: str) -> None:
        return None


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    import hubsig

    if scope["type"] == "lifespan":  # a bare app answers the server's start-up and shut-down
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    delivery = hubsig.delivery_of(scope)
    body = json.dumps(_answer(list(delivery.payload.entity_ids))).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(name: str, port: int, server: str) -> None:
    """Run receiver ``name`` on ``port`` under ``server`` (in this process)."""
    if server == "gunicorn":
        os.environ["HUBSIG_RECEIVER"] = name
        command = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}"]
        command += ["--log-level", "warning", "--timeout", "600", "benchmarks.receivers:wsgi_app"]
        os.execv(command[0], command)  # noqa: S606
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        os.environ["HUBSIG_RECEIVER"] = name
        Granian(
            "benchmarks.receivers:granian_app",
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            log_enabled=False,
        ).serve()
        return
    import uvicorn

    http = "h11" if server == "uvicorn-h11" else "httptools"
    uvicorn.run(
        build(name), host="127.0.0.1", port=port, log_level="error", access_log=False, http=http
    )


def granian_app(scope: Any, receive: Any, send: Any) -> Any:
    """The receiver named by ``$HUBSIG_RECEIVER``, built once per granian worker."""
    global _GRANIAN_APP
    if _GRANIAN_APP is None:
        _GRANIAN_APP = build(os.environ["HUBSIG_RECEIVER"])
    return _GRANIAN_APP(scope, receive, send)


_GRANIAN_APP: Any = None


def run(seconds: int = 4, rounds: int = 5) -> list[dict[str, Any]]:
    """Every receiver under every server available, in interleaved rounds (every other
    round in reverse order, so a drift of the machine cancels out); each receiver's ratio
    to its hand-written receiver is the median of the rounds' ratios, each round's taken
    against the hand-written receiver's figure of that same round."""
    import hubsig
    from benchmarks.end_to_end import _free_port, _wrk

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    servers = ["uvicorn", "uvicorn-h11"]
    try:
        import granian  # noqa: F401

        servers.append("granian")
    except ImportError:
        pass
    plan = [(server, name) for server in servers for name in RECEIVERS]
    if importlib.util.find_spec("gunicorn") is not None:
        plan += [("gunicorn", name) for name in WSGI_RECEIVERS]
    body = events_body(SIZE)
    signature = hubsig.sign(body, SECRET)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in plan}
    with tempfile.TemporaryDirectory() as folder:
        body_file = Path(folder) / "body.json"
        body_file.write_bytes(body)
        for round_number in range(rounds):
            for server, name in plan if round_number % 2 == 0 else reversed(plan):
                with _serving(name, server, _free_port()) as url:
                    _wrk(url, 1, 32, body_file, signature)  # warm-up
                    results[(server, name)].append(_wrk(url, seconds, 32, body_file, signature))
    rows = []
    for (server, name), measured in results.items():
        hand = results[(server, _hand_of(server, name))]
        ratios = [mine["rps"] / theirs["rps"] for mine, theirs in zip(measured, hand, strict=True)]
        best = max(measured, key=lambda result: result["rps"])
        rows.append(
            {
                "server": server,
                "receiver": name,
                **best,
                "rps_median": statistics.median(result["rps"] for result in measured),
                "ratios": [round(ratio, 3) for ratio in ratios],
                "ratio_to_hand": statistics.median(ratios),
            }
        )
    return rows


def _hand_of(server: str, name: str) -> str:
    """The hand-written receiver ``name`` is compared with: its framework's, under ``server``."""
    if server != "gunicorn":
        return "fastapi-hand"
    return "django-hand" if name.startswith("django-") else "flask-hand"


def _serving(name: str, server: str, port: int) -> Any:
    from benchmarks.end_to_end import served

    command = [sys.executable, "-m", "benchmarks.receivers", "serve", name, str(port), server]
    return served(command, port)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "serve":
        serve(argv[1], int(argv[2]), argv[3])
        return
    rows = run(int(argv[0]) if argv else 5)
    from benchmarks.run import machine, markdown

    print(markdown("receivers", rows))
    out = Path(__file__).parent / "results" / "receivers.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "receivers": rows}, indent=1), "utf-8")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
