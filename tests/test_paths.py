"""The path guard: a reading hubsig does not share with the router can only guard a request.

``tests/test_routing_oracle.py`` proves the rule against each framework's
router; here are the rule's own properties, its settings, the three ways in
found on the old design (each a test that failed there), and the start-up
check that asks the app's router about every entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import ConfigurationError
from hubsig._paths import PathGuard, application_path, is_plain, relative_path
from hubsig.kit.wsgi import routed_path
from tests import oracle_apps
from tests.harness import call_wsgi, request, run_asgi
from tests.oracle_apps import GUARDED, OTHER, SECRET, Entered
from tests.test_routing_oracle import signed_delivery, unsigned_delivery

EXEMPT = PathGuard(None, ["/health", "/static/"])
PATHS = PathGuard(["/hook", "/channels/"])

# --- the rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "plain"),
    [
        ("/", True),
        ("/hook", True),
        ("/hook/", True),
        ("/a-b_c.d~e/f!$&'()*+,=:@", True),
        ("/.well-known/x", True),
        ("/hook\n", False),
        ("/ho%6fk", False),
        ("//hook", False),
        ("/a//b", False),
        ("/./hook", False),
        ("/x/../hook", False),
        ("/..", False),
        ("/hook;x", False),
        ("/a\\b", False),
        ("/h\u00e9", False),
        ("hook", False),
        ("http://host/hook", False),
        ("", False),
    ],
)
def test_a_plain_path_is_one_no_router_can_read_as_another(path: str, plain: bool) -> None:
    assert is_plain(path) is plain


@given(st.text())
def test_exempt_lets_through_only_its_entries_spelled_exactly_or_plainly_below(path: str) -> None:
    if not EXEMPT.guards(path):
        assert path == "/health" or (path.startswith("/static/") and is_plain(path))


@given(st.text(), st.lists(st.text(), max_size=2))
def test_paths_lets_through_only_plain_paths_none_of_whose_readings_is_guarded(
    path: str, others: list[str]
) -> None:
    if not PATHS.guards(path, *others):
        for reading in (path, *others):
            assert is_plain(reading)
            folded = "/" + reading.strip("/").casefold()
            assert folded != "/hook"
            assert not folded.startswith("/channels")


@pytest.mark.parametrize(
    "path",
    ["/hook", "/HOOK", "/hook/", "/Channels/chat", "/channels", "/hook\n", "/ho%6fk", "//hook"],
)
def test_paths_guards_its_entries_in_every_spelling_and_what_is_not_plain(path: str) -> None:
    assert PATHS.guards(path)


@pytest.mark.parametrize("path", ["/health", "/hooks", "/hook/extra", "/channel"])
def test_paths_passes_plain_other_paths(path: str) -> None:
    assert not PATHS.guards(path)


@pytest.mark.parametrize(
    "path", ["/HEALTH", "/health/", "/health\n", "/static/../hook", "/static/%2e%2e/x", "/static"]
)
def test_exempt_guards_every_other_spelling_of_its_entries(path: str) -> None:
    assert EXEMPT.guards(path)


def test_an_unclear_mount_point_and_no_settings_guard_everything() -> None:
    assert EXEMPT.guards(None)
    assert PATHS.guards(None)
    assert PathGuard(None).guards("/anything")
    assert PathGuard(None).guards_everything
    assert PathGuard(["/"]).guards("/anything")


def test_exempt_root_is_the_root_route_alone() -> None:
    guard = PathGuard(None, ["/"])
    assert not guard.guards("/")
    assert guard.guards("/hook")


@pytest.mark.parametrize(
    ("path", "root", "relative"),
    [
        ("/api/hook", "/api", "/hook"),
        ("/api", "/api", "/"),
        ("/api/", "/api", "/"),
        ("/hook", "/api", "/hook"),  # a server that strips the mount point itself
        ("/hook", "", "/hook"),
        ("/apihook", "/api", None),  # Quart strips "/api" as a plain prefix
        ("/x/api/hook", "/api", None),  # Litestar strips at the first occurrence
        ("/api/hook", "/api/", "/hook"),
    ],
)
def test_relative_path_is_none_where_routers_disagree_on_the_mount_point(
    path: str, root: str, relative: str | None
) -> None:
    assert relative_path(path, root) == relative
    assert application_path(path, root) == (relative or path)


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "exempt", "message"),
    [
        (["/hook"], ["/health"], "not both"),
        ([], None, "non-empty list"),
        ("hook", None, "starting with '/'"),
        ([b"/hook"], None, "starting with '/'"),
        (42, None, "non-empty list"),
        (["/hook\n"], None, "control character"),
        (None, ["/health\t"], "control character"),
        (None, ["/static/%2e"], "not a plain path"),
        (None, ["/a//b"], "not a plain path"),
        (None, ["/a/../b"], "not a plain path"),
        (None, ["/a;b"], "not a plain path"),
    ],
)
def test_unusable_settings_are_refused_at_construction(
    paths: Any, exempt: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PathGuard(paths, exempt)


def test_one_entry_as_a_string_is_one_entry() -> None:
    assert PathGuard("/hook").paths == ("/hook",)
    assert PathGuard(None, "/health").exempt == ("/health",)


# --- the three ways in of the old design ---------------------------------------------


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


@pytest.mark.parametrize("builder", ["starlette", "fastapi"])
def test_a_trailing_newline_is_refused_not_routed_past_paths(builder: str) -> None:
    """Starlette's ``$`` matches before a final newline: the router sends
    ``/webhooks/interactions%0a`` to the guarded route; hubsig answers 400 first."""
    build, prefixes = oracle_apps.ASGI_APPS[builder]
    target = prefixes[0] + GUARDED + "%0a"
    bare, entered = Entered(), Entered()
    loop = _loop()
    try:
        headers, body = unsigned_delivery()
        run_asgi(
            build(bare, None), request("POST", target, headers, body), loop, answer_errors=True
        )
        assert bare.names == ["guarded"]  # the router's reading
        app = build(entered, oracle_apps.paths_settings(prefixes))
        reply = run_asgi(app, request("POST", target, headers, body), loop, answer_errors=True)
    finally:
        loop.close()
    assert entered.names == []
    assert reply.status == 400


def test_a_non_ascii_guarded_path_is_guarded_under_wsgi() -> None:
    """PEP 3333 carries the path as Latin-1; werkzeug routes its UTF-8 reading."""
    from flask import Flask

    from hubsig.wsgi import HubSignatureMiddleware

    app = Flask("non_ascii")
    ran: list[str] = []

    def view() -> str:
        ran.append("x")
        return "ran"

    app.add_url_rule("/hooks/événements", "hook", view, methods=["POST"])
    app.wsgi_app = HubSignatureMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, secret=SECRET, paths=["/hooks/événements"]
    )
    headers, body = unsigned_delivery()
    reply = call_wsgi(app, request("POST", "/hooks/%C3%A9v%C3%A9nements", headers, body))
    assert (reply.status, ran) == (401, [])
    signed_headers, signed_body = signed_delivery()
    reply = call_wsgi(
        app, request("POST", "/hooks/%C3%A9v%C3%A9nements", signed_headers, signed_body)
    )
    assert (reply.status, ran) == (200, ["x"])


@pytest.mark.parametrize(
    ("raw", "routed"),
    [
        ("/hook", "/hook"),
        ("/hooks/\u00c3\u00a9", "/hooks/\u00e9"),  # UTF-8 é carried as Latin-1
        ("/hooks/\u00e9", None),  # a lone 0xE9 byte: not UTF-8, no plain reading
    ],
)
def test_wsgi_paths_are_read_as_werkzeug_and_django_route_them(
    raw: str, routed: str | None
) -> None:
    assert routed_path({"PATH_INFO": raw}) == routed


# --- the start-up check: the router asked about every entry ---------------------------


def _lifespan(app: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        with contextlib.suppress(Exception):  # a failed start-up may also raise out of the app
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(asyncio.wait_for(run(), 5))
    return sent


ASGI_FORGOTTEN_PREFIX = [
    pytest.param("starlette", {"paths": ["/webhook/interactions"]}, id="starlette/paths-typo"),
    pytest.param("fastapi", {"paths": [GUARDED]}, id="fastapi/router-prefix-forgotten"),
    pytest.param("fastapi", {"exempt": [OTHER]}, id="fastapi/exempt-prefix-forgotten"),
    pytest.param("litestar", {"exempt": ["/helth"]}, id="litestar/exempt-typo"),
    pytest.param("quart", {"paths": ["/webhooks"]}, id="quart/paths-no-route"),
]


@pytest.mark.parametrize(("builder", "settings"), ASGI_FORGOTTEN_PREFIX)
def test_an_entry_no_route_matches_stops_the_asgi_start_up(
    builder: str, settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    build, _ = oracle_apps.ASGI_APPS[builder]
    app = build(Entered(), {"secret": SECRET, **settings})
    with caplog.at_level(logging.ERROR, logger="hubsig"):
        sent = _lifespan(app)
    failed = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    assert failed, sent
    entry = next(iter(settings.values()))[0]
    assert repr(entry) in failed[0]["message"]
    assert "matches no route" in caplog.text
    # and nothing is served meanwhile
    headers, body = signed_delivery()
    loop = _loop()
    try:
        reply = run_asgi(app, request("POST", GUARDED, headers, body), loop, answer_errors=True)
    finally:
        loop.close()
    assert reply.status == 500


@pytest.mark.parametrize("builder", ["starlette", "fastapi", "litestar", "quart"])
def test_entries_that_name_routes_start_up(builder: str) -> None:
    build, prefixes = oracle_apps.ASGI_APPS[builder]
    for settings in (oracle_apps.exempt_settings(prefixes), oracle_apps.paths_settings(prefixes)):
        sent = _lifespan(build(Entered(), settings))
        assert not [m for m in sent if m["type"] == "lifespan.startup.failed"], sent


@pytest.mark.parametrize("builder", ["flask", "django"])
def test_an_entry_no_route_matches_refuses_every_wsgi_request(
    builder: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests import django_site

    django_site.configure()
    from django.test.utils import override_settings

    with override_settings(ROOT_URLCONF="tests.oracle_apps"):
        build = oracle_apps.WSGI_APPS[builder]
        good = build(Entered(), oracle_apps.exempt_settings())
        headers, body = unsigned_delivery()
        assert call_wsgi(good, request("POST", OTHER, headers, body)).status == 200
        entered = Entered()
        app = build(entered, {"secret": SECRET, "exempt": ["/api" + OTHER]})
        with caplog.at_level(logging.ERROR, logger="hubsig"):
            reply = call_wsgi(app, request("POST", "/api" + OTHER, headers, body))
    assert (reply.status, entered.names) == (500, [])
    assert "'/api/health' matches no route" in caplog.text


# --- a mount point read two ways: the router confirms every exemption ------------------
# Found by an adversarial review: where a framework strips ``root_path`` otherwise than
# hubsig reads it (Quart makes a path outside it " ", Falcon never strips it, Litestar's
# router rewrites the path before its middleware runs), a request that looked exempt to
# hubsig reached a guarded route with a parameter. Now only the router's own answer exempts.


def _tenant_quart(entered: Entered) -> Any:
    from quart import Quart

    from hubsig.asgi import HubSignatureMiddleware

    app = Quart("tenant_quart")

    async def tenant(tenant: str) -> str:
        entered.note("guarded")
        return "guarded"

    async def health() -> str:
        entered.note("other")
        return "other"

    app.add_url_rule("/<tenant>", "tenant", tenant, methods=["POST"])
    app.add_url_rule("/health", "health", health, methods=["GET", "POST"])
    app.add_url_rule("/", "root", health, methods=["GET", "POST"])
    app.asgi_app = HubSignatureMiddleware(  # type: ignore[method-assign]
        app.asgi_app, secret=SECRET, exempt=["/", "/health"]
    )
    return app


def _tenant_falcon(entered: Entered) -> Any:
    import falcon.asgi

    from hubsig.asgi import HubSignatureMiddleware

    class Tenant:
        async def on_post(self, request: Any, response: Any, tenant: str) -> None:
            entered.note("guarded")

    class Root:
        async def on_post(self, request: Any, response: Any) -> None:
            entered.note("other")

    app = falcon.asgi.App()
    app.add_route("/{tenant}", Tenant())
    app.add_route("/", Root())
    return HubSignatureMiddleware(app, secret=SECRET, exempt=["/"])


def _tenant_litestar(entered: Entered) -> Any:
    from litestar import Litestar, Request, post, route
    from litestar.middleware import DefineMiddleware

    from hubsig.asgi import HubSignatureMiddleware

    @post("/{tenant:str}/health", status_code=200, sync_to_thread=False)
    def tenant(request: Request[Any, Any, Any]) -> str:
        entered.note("guarded")
        return "guarded"

    @route("/health", http_method=["GET", "POST"], status_code=200, sync_to_thread=False)
    def health() -> str:
        entered.note("other")
        return "other"

    middleware = DefineMiddleware(HubSignatureMiddleware, secret=SECRET, exempt=["/health"])
    return Litestar([tenant, health], middleware=[middleware], logging_config=None)


ROOT_TRICKS = [
    # (app, target, root_path, prefixed: the server puts root_path in front of the path)
    pytest.param(_tenant_quart, "/health", "/api", False, id="quart/outside-root"),
    pytest.param(_tenant_quart, "/api", "/api", False, id="quart/the-root-itself"),
    pytest.param(_tenant_quart, "", "/api", True, id="quart/empty-target"),
    pytest.param(_tenant_falcon, "/api", "/api", False, id="falcon/the-root-itself"),
    pytest.param(_tenant_falcon, "", "/api", True, id="falcon/empty-target"),
    pytest.param(_tenant_litestar, "/api/health", "/api", True, id="litestar/root-twice"),
]


@pytest.mark.parametrize(("build", "target", "root", "prefixed"), ROOT_TRICKS)
def test_a_mount_point_read_otherwise_by_the_router_cannot_exempt_a_guarded_route(
    build: Any, target: str, root: str, prefixed: bool
) -> None:
    bare = Entered()
    app = build(bare)
    headers, body = unsigned_delivery()
    loop = _loop()
    try:
        reply = run_asgi(
            app,
            request("POST", target, headers, body, root_path=root, prefixed=prefixed),
            loop,
            answer_errors=True,
        )
    finally:
        loop.close()
    assert "guarded" not in bare.names, f"HTTP {reply.status}: {reply.body[:200]!r}"


@pytest.mark.parametrize(
    ("build", "target"),
    [(_tenant_quart, "/health"), (_tenant_litestar, "/health")],
    ids=["quart", "litestar"],
)
def test_the_exempt_route_still_passes_under_a_mount_point(build: Any, target: str) -> None:
    entered = Entered()
    app = build(entered)
    headers, body = unsigned_delivery()
    loop = _loop()
    try:
        reply = run_asgi(
            app, request("POST", target, headers, body, root_path="/api"), loop, answer_errors=True
        )
    finally:
        loop.close()
    assert (reply.status, entered.names) == (200, ["other"])


def test_an_exempt_prefix_cannot_exempt_a_guarded_route_whose_parameter_matches_it() -> None:
    """``exempt=["/public/"]`` and a guarded ``/{tenant}/events`` declared first."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from hubsig.asgi import HubSignatureMiddleware

    entered = Entered()

    async def guarded(request: Request) -> PlainTextResponse:
        entered.note("guarded")
        return PlainTextResponse("guarded")

    async def public(request: Request) -> PlainTextResponse:
        entered.note("other")
        return PlainTextResponse("other")

    app = Starlette(
        routes=[
            Route("/{tenant}/events", guarded, methods=["POST"]),
            Route("/public/{page}", public, methods=["POST"]),
        ],
        middleware=[Middleware(HubSignatureMiddleware, secret=SECRET, exempt=["/public/"])],
    )
    headers, body = unsigned_delivery()
    loop = _loop()
    try:
        refused = run_asgi(
            app, request("POST", "/public/events", headers, body), loop, answer_errors=True
        )
        passed = run_asgi(
            app, request("POST", "/public/about", headers, body), loop, answer_errors=True
        )
    finally:
        loop.close()
    assert (refused.status, passed.status, entered.names) == (401, 200, ["other"])


def test_an_exempt_prefix_needs_a_router_hubsig_can_ask() -> None:
    import falcon

    from hubsig.wsgi import HubSignatureMiddleware

    app = HubSignatureMiddleware(falcon.App(), secret=SECRET, exempt=["/static/"])
    headers, body = unsigned_delivery()
    reply = call_wsgi(app, request("POST", "/static/x", headers, body))
    assert reply.status == 500  # the misconfiguration is refused, and logged, not guessed


@pytest.mark.parametrize("entry", ["/hooks/{channel}", "/hooks/<channel>", "/<int:x>/events"])
def test_a_route_template_is_not_a_path(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="template"):
        PathGuard([entry])


def test_an_aiohttp_sub_application_two_deep_is_read_below_its_whole_prefix() -> None:
    from aiohttp import web

    from hubsig.aiohttp import hubsig_middleware
    from tests.fail_closed_wire import raw_request
    from tests.oracle_apps import aiohttp_server

    entered = Entered()

    def view(name: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            entered.note(name)
            return web.Response(text=name)

        return handle

    inner = web.Application(
        middlewares=[hubsig_middleware(secret=SECRET, exempt=["/health", "/inner/status"])]
    )
    inner.router.add_post("/status", view("guarded"))
    inner.router.add_post("/health", view("other"))
    sub = web.Application()
    sub.add_subapp("/inner", inner)
    app = web.Application()
    app.add_subapp("/sub", sub)
    headers, body = unsigned_delivery()
    with aiohttp_server(app) as port:
        refused = raw_request(port, "POST", "/sub/inner/status", headers, body)
        passed = raw_request(port, "POST", "/sub/inner/health", headers, body)
    assert (refused.status, passed.status, entered.names) == (401, 200, ["other"])


@pytest.mark.parametrize(
    "settings",
    [{"exempt": ["/health"]}, {"paths": ["/webhooks/interactions"]}],
    ids=["exempt", "paths"],
)
def test_a_route_that_reads_its_delivery_but_is_let_through_stops_the_start_up(
    settings: dict[str, Any],
) -> None:
    """A handler calling ``hubsig.delivery_of`` that the middleware would never verify."""
    from fastapi import FastAPI, Request

    import hubsig
    from hubsig.asgi import HubSignatureMiddleware

    app = FastAPI()
    app.add_middleware(HubSignatureMiddleware, secret=SECRET, **settings)

    @app.post("/webhooks/interactions")
    async def hook(request: Request) -> str:
        return str(hubsig.delivery_of(request).trace.trace_id)

    @app.post("/health")
    async def health(request: Request) -> str:
        return str(hubsig.delivery_of(request).trace.trace_id)

    failed = [m for m in _lifespan(app) if m["type"] == "lifespan.startup.failed"]
    assert failed
    assert "'/health' reads hubsig.delivery_of" in failed[0]["message"]


def test_an_entry_that_names_no_route_is_told_the_route_it_resembles() -> None:
    build, _ = oracle_apps.ASGI_APPS["starlette"]
    app = build(Entered(), {"secret": SECRET, "exempt": ["/helth"]})
    failed = [m for m in _lifespan(app) if m["type"] == "lifespan.startup.failed"]
    assert "did you mean '/health'?" in failed[0]["message"]


# --- what the path settings refuse, and what they say (each message names the setting) ----------


@pytest.mark.parametrize("name", ["paths", "exempt"])
def test_each_path_setting_is_named_in_what_it_refuses(name: str) -> None:
    def guard(entries: Any) -> PathGuard:
        return PathGuard(entries) if name == "paths" else PathGuard(None, entries)

    for wrong in ([], ["hook"], 42):
        with pytest.raises(ConfigurationError) as raised:
            guard(wrong)
        assert str(raised.value) == f"{name} must be a non-empty list of paths starting with '/'"
    with pytest.raises(ConfigurationError) as raised:
        guard(["/hooks/{channel}"])
    assert str(raised.value) == (
        f"{name} entry '/hooks/{{channel}}' is a route template, not a path: hubsig matches "
        "paths as requests spell them; give the prefix the routes share, ending in '/'"
    )
    with pytest.raises(ConfigurationError, match=f"^{name} entry '/a\\\\nb' holds a control"):
        guard(["/a\nb"])


def test_an_entry_may_hold_any_letter_a_template_mark_is_what_is_refused() -> None:
    guard = PathGuard(None, ["/XRay", "/x"])
    assert not guard.guards("/XRay")
    assert not guard.guards("/x")  # a two-character entry is an exact one too
    assert guard.guards("/y")


def test_paths_and_exempt_together_and_unplain_exempt_entries_are_refused_saying_why() -> None:
    with pytest.raises(ConfigurationError) as raised:
        PathGuard(["/hook"], ["/health"])
    assert str(raised.value) == (
        "give paths= (the guarded routes) or exempt= (the app's other routes), not both"
    )
    with pytest.raises(ConfigurationError) as raised:
        PathGuard(None, ["/a/../b"])
    assert str(raised.value) == (
        "exempt entry '/a/../b' is not a plain path: no '%', '\\', ';', '//' or dot "
        "segments, since routers would read it otherwise"
    )


def test_paths_folds_only_slashes_off_an_entry() -> None:
    """``paths=["/hookX"]`` guards that path; ``/hook``, another route, passes unverified."""
    guard = PathGuard(["/hookX", "/feedsX/"])
    assert guard.guards("/hookX")
    assert guard.guards("/feedsX/a")
    assert not guard.guards("/hook")
    assert not guard.guards("/feeds/a")


def test_a_mount_point_ending_in_a_letter_is_cut_off_whole() -> None:
    assert relative_path("/apiX/hook", "/apiX") == "/hook"
    assert relative_path("/apiX/hook", "/apiX/") == "/hook"


def test_must_verify_reads_the_full_path_too() -> None:
    """Below a mount point the app sees ``/hook``; ``paths=`` may name it in full."""
    from hubsig._paths import must_verify

    guard = PathGuard(["/api/hook"])
    assert must_verify(guard, "/hook", "/api/hook", lambda: True)
    assert not must_verify(guard, "/other", "/api/other", lambda: True)
    exempt = PathGuard(None, ["/health"])
    assert must_verify(exempt, "/health", "/health", lambda: False)  # the router disagrees
    assert not must_verify(exempt, "/health", "/health", lambda: True)
