"""Safe by construction, proved with each framework's own router as the oracle.

Hypothesis grows request targets from the apps' routes (``tests/oracle_apps.py``):
percent-encodings of any character, ``%0a``/``%0d``/``%00``/``%09`` anywhere,
trailing and doubled slashes, dot segments, ``;params``, case, non-ASCII in
UTF-8 and Latin-1, absolute-form. Each target goes to the app *without*
hubsig, whose router says which handler it dispatches to, and, unsigned, to
the same app *with* hubsig's middleware (``exempt=`` and ``paths=``): for
every target the router sends to a guarded handler, that handler never runs.
The requests are built as uvicorn and gunicorn build them
(``tests/fail_closed_wire.py``); aiohttp's go to its own server on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, find, given, settings
from hypothesis import strategies as st

from hubsig.testing import make_events, signed_request
from tests import django_site, oracle_apps
from tests.fail_closed_wire import raw_request
from tests.harness import Reply, call_wsgi, run_asgi
from tests.harness import request as http_request
from tests.oracle_apps import ROUTES, Entered, Settings

CONTROLS = ["%0a", "%0A", "%0d", "%00", "%09", "%0a%0d", "%1b", "%7f"]
"""Control characters: the ones routers treat most differently (Python's ``$``)."""
INSERTS = [
    "/", "//", "/./", "/../", "/x/../", ";", ";x=1",
    "%2F", "%2f", "%5C", "\\", ".", "..", "%2e", "%2E%2E", "%25", "%2525", "%20",
    "%C3%A9", "%E9", "%C0%AF", "%FF", "~", "+", "@", ":", "!",
]  # fmt: skip
"""What an attacker puts into a path: control characters, separators, escapes, non-ASCII."""


def _percent(char: str, upper: bool) -> str:
    escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return escaped if upper else escaped.lower()


@st.composite
def targets(draw: st.DrawFn, prefixes: tuple[str, ...] = ("",)) -> str:
    """A request target grown from one of the routes by a few hostile edits."""
    path = list(draw(st.sampled_from(prefixes)) + draw(st.sampled_from(ROUTES)))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3, 4, 0]))):
        # The ends and the slashes are where routers differ most: drawn as often as the rest.
        slashes = [i for i, char in enumerate(path) if char == "/"]
        at = draw(
            st.one_of(
                st.just(len(path)),
                st.just(len(path)),
                st.sampled_from([*slashes, *(i + 1 for i in slashes), len(path)]),
                st.integers(0, len(path)),
            )
        )
        edit = draw(st.sampled_from(["percent", "insert", "case", "insert"]))
        if edit == "percent" and at < len(path):
            path[at] = _percent(path[at], draw(st.booleans()))
        elif edit == "case" and at < len(path):
            path[at] = path[at].swapcase()
        else:
            path.insert(at, draw(st.sampled_from(CONTROLS) | st.sampled_from(INSERTS)))
    target = "".join(path)
    form = draw(st.sampled_from(["origin", "origin", "origin", "absolute", "no-slash", "query"]))
    if form == "absolute":
        return "http://127.0.0.1" + target
    if form == "no-slash":
        return target.lstrip("/")
    return target + "?x=1" if form == "query" else target


def unsigned_delivery() -> tuple[dict[str, str], bytes]:
    # A trace id of its own: Hypothesis seeds ``random``, which hubsig's ids come from.
    request = signed_request(make_events(1), oracle_apps.SECRET, trace_id=uuid.uuid4().hex)
    headers = {k: v for k, v in request.headers.items() if k != "X-Hub-Signature"}
    return headers, request.body


def signed_delivery() -> tuple[dict[str, str], bytes]:
    request = signed_request(make_events(1), oracle_apps.SECRET, trace_id=uuid.uuid4().hex)
    return dict(request.headers), request.body


Send = Callable[[str, dict[str, str], bytes], Reply]


class Pair:
    """One framework's app twice: bare (the oracle) and behind hubsig; each sends a target
    and reports which handlers it entered."""

    def __init__(self, bare: Send, guarded: Send, bare_entered: Entered, entered: Entered):
        self._bare, self._guarded = bare, guarded
        self._bare_entered, self._entered = bare_entered, entered

    def routed(self, target: str, method: str = "POST") -> list[str]:
        """Which handlers the framework's router dispatches ``target`` to (the oracle)."""
        self._bare_entered.names.clear()
        headers, body = unsigned_delivery()
        self._bare(target, headers, body)
        return list(self._bare_entered.names)

    def through_hubsig(self, target: str, signed: bool = False) -> tuple[Reply, list[str]]:
        self._entered.names.clear()
        headers, body = signed_delivery() if signed else unsigned_delivery()
        reply = self._guarded(target, headers, body)
        return reply, list(self._entered.names)


MODES = {"exempt": oracle_apps.exempt_settings, "paths": oracle_apps.paths_settings}


def _asgi_send(app: Any, loop: asyncio.AbstractEventLoop) -> Send:
    return lambda target, headers, body: run_asgi(
        app, http_request("POST", target, headers, body), loop, answer_errors=True
    )


def _wsgi_send(app: Any) -> Send:
    return lambda target, headers, body: call_wsgi(app, http_request("POST", target, headers, body))


def _raw_send(port: int) -> Send:
    return lambda target, headers, body: raw_request(port, "POST", target, headers, body)


FRAMEWORKS = ["starlette", "fastapi", "litestar", "quart", "flask", "django", "aiohttp"]


def prefixes_of(framework: str) -> tuple[str, ...]:
    return oracle_apps.ASGI_APPS[framework][1] if framework in oracle_apps.ASGI_APPS else ("",)


@pytest.fixture(scope="module")
def event_loop_for_apps() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def pair(
    request: pytest.FixtureRequest, event_loop_for_apps: asyncio.AbstractEventLoop
) -> Iterator[Pair]:
    """``framework/mode``: the framework's app bare and behind hubsig in that mode."""
    framework, mode = request.param
    settings_: Settings = MODES[mode](prefixes_of(framework))
    bare_entered, entered = Entered(), Entered()
    if framework in oracle_apps.ASGI_APPS:
        build = oracle_apps.ASGI_APPS[framework][0]
        loop = event_loop_for_apps
        yield Pair(
            _asgi_send(build(bare_entered, None), loop),
            _asgi_send(build(entered, settings_), loop),
            bare_entered,
            entered,
        )
    elif framework == "aiohttp":
        with (
            oracle_apps.aiohttp_server(oracle_apps.aiohttp_app(bare_entered, None)) as bare,
            oracle_apps.aiohttp_server(oracle_apps.aiohttp_app(entered, settings_)) as guarded,
        ):
            yield Pair(_raw_send(bare), _raw_send(guarded), bare_entered, entered)
    else:
        urlconf: Any = contextlib.nullcontext()
        if framework == "django":
            # One URLconf serves both apps, so both note into one record (cleared per call).
            entered = bare_entered
            django_site.configure()
            from django.test.utils import override_settings

            urlconf = override_settings(ROOT_URLCONF="tests.oracle_apps")
        with urlconf:
            build_wsgi = oracle_apps.WSGI_APPS[framework]
            yield Pair(
                _wsgi_send(build_wsgi(bare_entered, None)),
                _wsgi_send(build_wsgi(entered, settings_)),
                bare_entered,
                entered,
            )


PAIRS = [
    # aiohttp's pair runs on its own server on loopback: with the real servers, in the slow part
    pytest.param(
        (framework, mode),
        id=f"{framework}/{mode}",
        marks=pytest.mark.slow if framework == "aiohttp" else (),
    )
    for framework in FRAMEWORKS
    for mode in MODES
]
EXAMPLES = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
@EXAMPLES
@given(data=st.data())
def test_no_target_the_router_sends_to_a_guarded_handler_reaches_it_unsigned(
    pair: Pair, data: st.DataObject, request: pytest.FixtureRequest
) -> None:
    """The invariant: whatever the router makes of a target, if it dispatches it to a
    guarded handler, hubsig refused the unsigned request before that handler ran."""
    framework = request.node.callspec.id.split("/")[0]
    target = data.draw(targets(prefixes_of(framework)), label="target")
    routed = pair.routed(target)
    event(f"router: {'+'.join(routed) or 'nothing'}")
    reply, entered = pair.through_hubsig(target)
    if any(name != "other" for name in routed):
        assert entered == [], f"{target!r} reached {entered} unsigned (HTTP {reply.status})"
        assert 400 <= reply.status < 500, f"{target!r}: HTTP {reply.status}"
    assert not {"guarded", "channel"} & set(entered), f"{target!r} got in"


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_the_generated_targets_reach_the_guarded_handlers_by_other_spellings(
    pair: Pair, request: pytest.FixtureRequest
) -> None:
    """The oracle is not idle: the generator finds targets, other than the routes' own
    spellings, that the router dispatches to a guarded handler (so the invariant above
    is tested on them), and the signed delivery still gets through hubsig."""
    framework = request.node.callspec.id.split("/")[0]
    prefixes = prefixes_of(framework)
    plain = {prefix + route for prefix in prefixes for route in ROUTES}

    def odd_and_guarded(target: str) -> bool:
        return target not in plain and any(n != "other" for n in pair.routed(target))

    found = find(
        targets(prefixes),
        odd_and_guarded,
        settings=settings(max_examples=2000, deadline=None, database=None),
    )
    assert found not in plain
    reply, entered = pair.through_hubsig(prefixes[0] + oracle_apps.GUARDED, signed=True)
    assert (reply.status, entered) == (200, ["guarded"]), reply.body[:200]


@pytest.mark.parametrize("pair", [p for p in PAIRS if str(p.id).endswith("/exempt")], indirect=True)
def test_the_exempt_route_spelled_exactly_passes_unverified(
    pair: Pair, request: pytest.FixtureRequest
) -> None:
    """The other half: ``exempt=`` lets the app's other route through, unsigned."""
    prefix = prefixes_of(request.node.callspec.id.split("/")[0])[0]
    reply, entered = pair.through_hubsig(prefix + oracle_apps.OTHER)
    assert (reply.status, entered) == (200, ["other"])


# --- a sample of the same targets, byte for byte, through real servers -----------------

SERVERS = {
    "uvicorn-httptools": ["-m", "uvicorn", "--http", "httptools"],
    "uvicorn-h11": ["-m", "uvicorn", "--http", "h11"],
    "granian": ["-m", "granian", "--interface", "asgi", "--no-ws", "--log-level", "warning"],
}


@pytest.fixture(scope="module", params=list(SERVERS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """A real server serving ``oracle_apps.served_apps``; yields its port and handler log."""
    import os
    import subprocess
    import sys
    import time

    from tests.fail_closed_wire import ROOT, _free_port, _stop

    log = tmp_path_factory.mktemp("oracle") / "entered.log"
    log.touch()
    port = _free_port()
    kind = request.param
    command = [sys.executable, *SERVERS[kind], "--factory", "tests.oracle_apps:served_apps"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    if kind.startswith("uvicorn"):
        command += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, oracle_apps.LOG_ENV: str(log), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, f"{kind} exited"
            try:
                raw_request(port, "GET", "/", {}, b"")
                break
            except OSError:
                time.sleep(0.1)
        yield port, log
    finally:
        _stop(process)


def _entered(log: Path, trace_id: str) -> list[str]:
    lines = log.read_text(encoding="ascii").splitlines()
    return [name for trace, _, name in (line.partition(" ") for line in lines) if trace == trace_id]


@pytest.mark.slow
@pytest.mark.parametrize(
    "app", ["starlette/exempt", "starlette/paths", "fastapi/exempt", "fastapi/paths"]
)
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_real_servers_never_take_a_routed_target_past_hubsig_unsigned(
    served: tuple[int, Path], app: str, data: st.DataObject
) -> None:
    """The invariant again, for a fixed sample of generated targets sent byte for byte to
    uvicorn (httptools and h11) and granian, each server making its own scope of them."""
    port, log = served
    framework = app.split("/")[0]
    target = data.draw(targets(prefixes_of(framework)), label="target")
    headers, body = unsigned_delivery()
    bare_trace = headers["X-B3-TraceId"]
    raw_request(
        port, "POST", target, {**headers, oracle_apps.APP_HEADER: f"{framework}/bare"}, body
    )
    routed = _entered(log, bare_trace)
    headers, body = unsigned_delivery()
    reply = raw_request(port, "POST", target, {**headers, oracle_apps.APP_HEADER: app}, body)
    entered = _entered(log, headers["X-B3-TraceId"])
    if any(name != "other" for name in routed):
        assert entered == [], f"{target!r} reached {entered} unsigned (HTTP {reply.status})"
    assert not {"guarded", "channel"} & set(entered), f"{target!r} got in"
