"""Fail closed: no unsigned, forged or tampered request ever runs a guarded handler, anywhere.

One table, every row a deployment (``tests/fail_closed_apps.py``: the ASGI
and WSGI middleware, ``@webhook`` as ASGI and WSGI, the FastAPI dependency,
in Starlette, FastAPI, Litestar, Quart, Flask, Django, bare or mounted) as
one way of reaching it: called in process with the scope or environ a server
builds (with ``root_path`` / ``SCRIPT_NAME``), or through a real uvicorn,
hypercorn or gunicorn on loopback, the request line written byte for byte.
The columns are the axes that carry information: each spelling of the
guarded path (``//x``, ``/x/``, ``%69``, ``%2F``, case, dot segments, a
trailing ``%0a``, absolute-form, ...) sent unsigned; each attack (unsigned,
forged, tampered) on the exact path; and every other method, in each
surface's first style (the style moves the path, not the method). (A forged or
tampered body on another spelling, or with a lowercase ``post``, adds nothing:
whether hubsig verifies is decided by the method and path alone.) A test id is
one surface and one probe (a spelling, an attack, a method): it checks every
deployment and style of that surface and names each one that failed, so one
regression fails a handful of ids, each with the whole list. The real servers'
ids are marked ``slow`` (``pytest -m slow``). ``tests/test_routing_oracle.py`` generates
the spellings instead, with each framework's router as the oracle. The guarded handler records
each request it is entered with, so "never ran" is observed, not inferred
from a status; and a correctly signed delivery must reach it, so a guard
that refused everything would fail here too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hubsig.asgi import ASGIApp
from hubsig.testing import make_events, signed_request
from hubsig.wsgi import WSGIApp
from tests import django_site
from tests.fail_closed_apps import (
    ASGI_BUILDERS,
    DEPLOYMENT_HEADER,
    PATH,
    SECRET,
    SHAPES,
    UNGUARDED,
    WSGI_BUILDERS,
    Recorder,
    Shape,
)
from tests.fail_closed_wire import RealServer, real_servers
from tests.harness import Reply, call_wsgi, request, run_asgi

ROOT_PATH = "/api"
"""The server's root path: uvicorn/hypercorn ``--root-path``, gunicorn's ``SCRIPT_NAME``."""

# --- how a request reaches a deployment ----------------------------------------------


@dataclass(frozen=True)
class Style:
    """One way a request reaches the app: what the client sends before the deployment's
    prefix, and (in process) the ``root_path``/``SCRIPT_NAME`` the server sets.

    ``prefixed``: the ASGI ``path`` includes ``root_path`` (uvicorn, Starlette
    mounts) or not (hypercorn 0.18). ``unservable``: deployments whose
    framework cannot route any request in this style (a framework and server
    that disagree on ``root_path``), so a signed delivery is refused there too.
    ``unsent``: spellings the server itself answers before any app runs.
    """

    name: str
    sent_root: str = ""
    root_path: str = ""
    prefixed: bool = True
    headers: tuple[tuple[str, str], ...] = ()
    unservable: frozenset[str] = frozenset()
    unsent: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Surface:
    """In process (``server`` None) or a real server ``(kind, root_path)``."""

    name: str
    protocol: str
    server: tuple[str, str] | None
    styles: tuple[Style, ...]

    @property
    def deployments(self) -> list[str]:
        return list(ASGI_BUILDERS if self.protocol == "asgi" else WSGI_BUILDERS)


_ASGI_MOUNTED = frozenset(name for name in ASGI_BUILDERS if SHAPES[name].prefix)
# Starlette's Mount and Quart assume ``path`` starts with ``root_path``; hypercorn's does not.
_UNPREFIXED_UNSERVABLE = _ASGI_MOUNTED | {"quart"}
# uvicorn adds the root path itself: a proxy that kept it sends /api/api/...: nothing routes.
_DOUBLED_UNSERVABLE = frozenset(ASGI_BUILDERS) - {"webhook-alone"}
# gunicorn answers a path outside SCRIPT_NAME with its own 500 (ConfigurationProblem).
_OUTSIDE_SCRIPT_NAME = frozenset({"root-path-inside"})

SURFACES = [
    Surface(
        "asgi",
        "asgi",
        None,
        (
            Style("plain"),
            Style("root-path", root_path=ROOT_PATH),
            Style(
                "root-path-unprefixed",
                root_path=ROOT_PATH,
                prefixed=False,
                unservable=_UNPREFIXED_UNSERVABLE,
            ),
        ),
    ),
    Surface(
        "wsgi",
        "wsgi",
        None,
        (
            Style("plain"),
            Style(
                "script-name",
                sent_root=ROOT_PATH,
                root_path=ROOT_PATH,
                unsent=_OUTSIDE_SCRIPT_NAME,
            ),
        ),
    ),
    Surface("uvicorn", "asgi", ("uvicorn", ""), (Style("plain"),)),
    Surface(
        "uvicorn-root-path",
        "asgi",
        ("uvicorn", ROOT_PATH),
        (
            Style("proxy-stripped"),
            Style("proxy-kept", sent_root=ROOT_PATH, unservable=_DOUBLED_UNSERVABLE),
        ),
    ),
    Surface(
        "hypercorn-root-path",
        "asgi",
        ("hypercorn", ROOT_PATH),
        (
            Style("proxy-stripped", unservable=_UNPREFIXED_UNSERVABLE),
            Style("proxy-kept", sent_root=ROOT_PATH),
        ),
    ),
    Surface(
        "gunicorn",
        "wsgi",
        ("gunicorn", ""),
        (
            Style("plain"),
            # gunicorn takes SCRIPT_NAME from a header sent by a trusted (loopback) proxy.
            Style(
                "script-name",
                sent_root=ROOT_PATH,
                headers=(("SCRIPT_NAME", ROOT_PATH),),
                unsent=_OUTSIDE_SCRIPT_NAME,
            ),
        ),
    ),
]


@dataclass(frozen=True)
class Case:
    """One row: a deployment, reached one way."""

    surface: Surface
    style: Style
    deployment: str

    @property
    def shape(self) -> Shape:
        return SHAPES[self.deployment]

    @property
    def servable(self) -> bool:
        return self.deployment not in self.style.unservable

    @property
    def id(self) -> str:
        return f"{self.surface.name}/{self.style.name}/{self.deployment}"

    def target(self, route: str = PATH) -> str:
        return self.style.sent_root + self.shape.prefix + route


CASES = [
    Case(surface, style, deployment)
    for surface in SURFACES
    for style in surface.styles
    for deployment in surface.deployments
]


class Receivers:
    """Sends a request to a case's deployment; builds the apps and starts the servers once."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._stack = ExitStack()
        self._recorder = Recorder()
        self._asgi: dict[str, ASGIApp] | None = None
        self._wsgi: dict[str, WSGIApp] | None = None
        self._servers: dict[str, RealServer] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        self._stack.close()

    def recorder(self, case: Case) -> Recorder:
        if case.surface.server is None:
            return self._recorder
        return self._real(case.surface).recorder

    def send(
        self, case: Case, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        headers = {**headers, **dict(case.style.headers), DEPLOYMENT_HEADER: case.deployment}
        if case.surface.server is not None:
            return self._real(case.surface).send(method, target, headers, body)
        style = case.style
        if case.surface.protocol == "asgi":
            app = self._asgi_apps()[case.deployment]
            assert self._loop is not None
            return run_asgi(
                app,
                request(
                    method,
                    target,
                    headers,
                    body,
                    root_path=style.root_path,
                    prefixed=style.prefixed,
                ),
                self._loop,
                answer_errors=True,
            )
        wsgi_app = self._wsgi_apps()[case.deployment]
        return call_wsgi(
            wsgi_app, request(method, target, headers, body, root_path=style.root_path)
        )

    def _asgi_apps(self) -> dict[str, ASGIApp]:
        if self._asgi is None:
            self._loop = asyncio.new_event_loop()
            self._stack.callback(self._loop.close)
            self._asgi = {name: build(self._recorder) for name, build in ASGI_BUILDERS.items()}
        return self._asgi

    def _wsgi_apps(self) -> dict[str, WSGIApp]:
        if self._wsgi is None:
            django_site.configure()
            from django.test.utils import override_settings

            # Django behind a proxy that strips /api, routed by this suite's URLconf.
            settings = override_settings(
                ROOT_URLCONF="tests.fail_closed_apps", FORCE_SCRIPT_NAME=ROOT_PATH
            )
            settings.enable()
            self._stack.callback(settings.disable)
            self._wsgi = {name: build(self._recorder) for name, build in WSGI_BUILDERS.items()}
        return self._wsgi

    def _real(self, surface: Surface) -> RealServer:
        if self._servers is None:
            specs = {s.name: s.server for s in SURFACES if s.server is not None}
            self._servers = self._stack.enter_context(real_servers(specs, self._workdir))
        return self._servers[surface.name]


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receivers]:
    """Every deployment, in process and behind each real server (started once, on first use)."""
    receivers = Receivers(tmp_path_factory.mktemp("fail-closed"))
    try:
        yield receivers
    finally:
        receivers.close()


# --- the attacks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spelling:
    """A request target naming the guarded route, from the root sent and the mount prefix.

    ``documented``: a spelling hubsig's path normalisation promises to guard
    (percent-decoding, repeated and trailing slashes, dot segments, case),
    so where hubsig sees the request before any router, hubsig must refuse it.
    """

    name: str
    spell: Callable[[str, str], str]
    documented: bool
    mutates_mount: bool = False


def _under(suffix: str) -> Callable[[str, str], str]:
    return lambda root, mount: root + mount + suffix


SPELLINGS = [
    Spelling("exact", _under(PATH), True),
    Spelling("leading-double-slash", _under("//webhooks/interactions"), True),
    Spelling("inner-double-slash", _under("/webhooks//interactions"), True),
    Spelling("trailing-slash", _under("/webhooks/interactions/"), True),
    Spelling("trailing-double-slash", _under("/webhooks/interactions//"), True),
    Spelling("percent-letter", _under("/webhooks/%69nteractions"), True),
    Spelling("percent-everything", _under("/%77ebhooks/%69%6E%74eractions"), True),
    Spelling("encoded-slash", _under("/webhooks%2Finteractions"), True),
    Spelling("encoded-slash-lower", _under("/webhooks%2finteractions"), True),
    Spelling("double-encoded", _under("/webhooks/%2569nteractions"), True),
    Spelling("upper-case", _under("/WEBHOOKS/INTERACTIONS"), True),
    Spelling("mixed-case", _under("/Webhooks/InterActions"), True),
    Spelling("dot-segment", _under("/webhooks/./interactions"), True),
    Spelling("leading-dot-segment", _under("/./webhooks/interactions"), True),
    Spelling("dot-dot-segment", _under("/webhooks/x/../interactions"), True),
    Spelling("encoded-dot-dot", _under("/webhooks/x/%2E%2E/interactions"), True),
    Spelling("backslash", _under("/webhooks%5Cinteractions"), True),
    Spelling("query", _under("/webhooks/interactions?x=1"), True),
    Spelling("fragment", _under("/webhooks/interactions#x"), False),
    Spelling("semicolon", _under("/webhooks/interactions;x=1"), False),
    Spelling("nul", _under("/webhooks/interactions%00"), False),
    Spelling("trailing-newline", _under("/webhooks/interactions%0a"), False),
    Spelling("trailing-cr", _under("/webhooks/interactions%0D"), False),
    Spelling("inner-tab", _under("/webhooks/%09interactions"), False),
    Spelling("non-ascii", _under("/webhooks/interactions%C3%A9"), False),
    Spelling("absolute-form", lambda root, mount: f"http://127.0.0.1{root}{mount}{PATH}", False),
    Spelling(
        "absolute-form-params",
        lambda root, mount: f"http://127.0.0.1{root}{mount}{PATH};x=1",
        False,
    ),
    Spelling("scheme-only", lambda root, mount: f"http:{root}{mount}{PATH}", False),
    Spelling("no-leading-slash", lambda root, mount: (root + mount + PATH)[1:], False),
    Spelling("root-path-inside", lambda root, mount: f"/x{ROOT_PATH}{mount}{PATH}", False),
    Spelling("mount-upper-case", lambda root, mount: root + mount.upper() + PATH, True, True),
    Spelling("mount-double-slash", lambda root, mount: f"{root}/{mount}{PATH}", True, True),
    Spelling(
        "mount-percent",
        lambda root, mount: f"{root}/%{ord(mount[1]):02X}{mount[2:]}{PATH}",
        True,
        True,
    ),
]

ATTACKS = ["unsigned", "forged", "tampered"]
REFUSAL_CODE = {
    "unsigned": "missing_signature",
    "forged": "signature_mismatch",
    "tampered": "signature_mismatch",
}
METHODS = ["HEAD", "GET", "PUT", "PATCH", "DELETE", "OPTIONS", "post"]


@dataclass(frozen=True)
class Sent:
    """A request's headers and body, its trace id (what the handlers record), its entity ids."""

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trace_id: str = ""
    ids: tuple[str, ...] = ()


def delivery(attack: str) -> Sent:
    """A delivery as an attacker sends it: ``unsigned``, ``forged`` (signed with another
    secret), ``tampered`` (a valid signature of other bytes), or ``signed`` correctly."""
    events = make_events(1)
    if attack == "forged":
        request = signed_request(events, "not-the-secret")
    else:
        request = signed_request(events, SECRET, tamper=attack == "tampered")
    headers = dict(request.headers)
    if attack == "unsigned":
        del headers["X-Hub-Signature"]
    return Sent(headers, request.body, request.trace_id, events.entity_ids)


def refusal_code(reply: Reply) -> str:
    """The reason code of an ``EventsResponse`` refusal (``missing_signature``, ...)."""
    try:
        message: str = json.loads(reply.body)["status"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"<not an EventsResponse: {reply.body[:80]!r}>"
    return message.partition(":")[0]


def assert_never_ran(
    receivers: Receivers, case: Case, sent: Sent, reply: Reply, request_line: str
) -> None:
    """The guarded handler was not entered, and the sender got a 4xx (or, where a router
    answers before hubsig, the router's redirect): never a 2xx, never a 5xx."""
    answer = f"{request_line!r} got HTTP {reply.status} {reply.body[:160]!r}"
    ran = receivers.recorder(case).has_entered(sent.trace_id)
    assert not ran, f"the guarded handler ran: {answer}"
    lowest = 400 if case.shape.guard_first else 300
    assert lowest <= reply.status < 500, answer


# --- the tests: one id per surface and probe, every deployment and style checked in it ------


def _surface_params(probes: list[str] | None = None) -> list[Any]:
    """``surface`` or ``surface/probe`` ids; a real server's are ``slow`` (``pytest -m slow``)."""
    return [
        pytest.param(
            *((surface,) if probes is None else (surface, probe)),
            id=surface.name if probes is None else f"{surface.name}/{probe}",
            marks=pytest.mark.slow if surface.server is not None else (),
        )
        for surface in SURFACES
        for probe in (probes or [""])
    ]


def cases_on(surface: Surface) -> list[Case]:
    return [case for case in CASES if case.surface == surface]


def for_each(cases: list[Case], check: Callable[[Case], None]) -> None:
    """Run ``check`` on every case and fail once, naming every case that failed and why
    (a regression fails one test per surface and probe, with the whole list)."""
    failures = []
    for case in cases:
        try:
            check(case)
        except AssertionError as error:
            failures.append(f"{case.id}: {str(error).splitlines()[0]}")
    assert not failures, f"{len(failures)} of {len(cases)} deployments:\n" + "\n".join(failures)


_CONTROL = frozenset({"nul", "trailing-newline", "trailing-cr", "inner-tab"})
_SPELLINGS = {spelling.name: spelling for spelling in SPELLINGS}


@pytest.mark.parametrize(("surface", "spelling"), _surface_params(list(_SPELLINGS)))
def test_no_spelling_of_the_guarded_path_lets_an_unsigned_delivery_in(
    receivers: Receivers, surface: Surface, spelling: str
) -> None:
    """Every spelling of the guarded path, unsigned, is refused without the handler
    running, in every deployment and style; where hubsig sees the request before any
    router, a spelling it promises to cover gets hubsig's own 401, not a lucky 404, and a
    control character its 400."""
    spelt = _SPELLINGS[spelling]

    def check(case: Case) -> None:
        sent = delivery("unsigned")
        target = spelt.spell(case.style.sent_root, case.shape.prefix)
        reply = receivers.send(case, "POST", target, sent.headers, sent.body)
        assert_never_ran(receivers, case, sent, reply, f"POST {target}")
        outside_mount = case.shape.outside_mount or not spelt.mutates_mount
        if spelling not in _CONTROL and (
            case.servable
            and (
                case.shape.every_path
                or (case.shape.guard_first and spelt.documented and outside_mount)
            )
        ):
            assert (reply.status, refusal_code(reply)) == (401, "missing_signature"), target
        if case.shape.guard_first and case.surface.server is None and spelling in _CONTROL:
            assert (reply.status, refusal_code(reply)) == (400, "malformed_request"), target

    cases = [
        case
        for case in cases_on(surface)
        if not (spelt.mutates_mount and not case.shape.prefix) and spelling not in case.style.unsent
    ]
    for_each(cases, check)


@pytest.mark.parametrize(("surface", "attack"), _surface_params(ATTACKS))
def test_no_bad_delivery_to_the_guarded_path_gets_in(
    receivers: Receivers, surface: Surface, attack: str
) -> None:
    """An unsigned, forged or tampered delivery to the guarded route, spelled exactly, is
    refused with its reason, without the handler running, in every deployment and style."""

    def check(case: Case) -> None:
        sent = delivery(attack)
        reply = receivers.send(case, "POST", case.target(), sent.headers, sent.body)
        assert_never_ran(receivers, case, sent, reply, f"POST {case.target()}")
        if case.servable:
            assert (reply.status, refusal_code(reply)) == (401, REFUSAL_CODE[attack])

    for_each(cases_on(surface), check)


@pytest.mark.parametrize(("surface", "method"), _surface_params(METHODS))
def test_no_other_method_reaches_the_guarded_handler(
    receivers: Receivers, surface: Surface, method: str
) -> None:
    """Guarded paths take POST only: any other method is refused (405), signed or not, in
    every deployment (in the surface's first style: the style moves the path, not the
    method). A lowercase ``post`` is sent unsigned: servers differ (gunicorn refuses the
    token, hypercorn makes it POST, uvicorn keeps it), and signed it is a delivery."""
    first_style = surface.styles[0]

    def check(case: Case) -> None:
        for attack in ("unsigned", "signed") if method.isupper() else ("unsigned",):
            sent = delivery(attack)
            reply = receivers.send(case, method, case.target(), sent.headers, sent.body)
            assert_never_ran(receivers, case, sent, reply, f"{method} {case.target()} {attack}")
            if case.servable and method.isupper():
                assert reply.status == 405, f"{attack}: HTTP {reply.status}"

    for_each([case for case in cases_on(surface) if case.style == first_style], check)


@pytest.mark.parametrize("surface", _surface_params())
def test_a_signed_delivery_reaches_the_guarded_handler(
    receivers: Receivers, surface: Surface
) -> None:
    """The other half of the promise: the guard lets the real sender in, in every deployment
    a framework can route (and where it cannot, the delivery is still refused, not run)."""

    def check(case: Case) -> None:
        sent = delivery("signed")
        reply = receivers.send(case, "POST", case.target(), sent.headers, sent.body)
        if not case.servable:
            assert_never_ran(receivers, case, sent, reply, f"POST {case.target()}")
            return
        assert 200 <= reply.status < 300, f"HTTP {reply.status} {reply.body[:200]!r}"
        assert receivers.recorder(case).has_verified(sent.trace_id)
        answer = json.loads(reply.body)
        assert answer["status"]["code"] == 0
        assert [item["id"] for item in answer["data"]["ids"]] == list(sent.ids)

    for_each(cases_on(surface), check)


@pytest.mark.parametrize(("surface", "attack"), _surface_params(["unsigned", "signed"]))
def test_delivery_of_refuses_a_request_hubsig_did_not_verify(
    receivers: Receivers, surface: Surface, attack: str
) -> None:
    """The safety net: a handler on a path the middleware does not guard (a configuration
    mistake) that reads its delivery through ``hubsig.delivery_of`` gets ``NotVerified``,
    signature header or not, and stops there (frameworks answer the exception with 500)."""

    def check(case: Case) -> None:
        sent = delivery(attack)
        reply = receivers.send(case, "POST", case.target(UNGUARDED), sent.headers, sent.body)
        recorder = receivers.recorder(case)
        assert recorder.has_entered(sent.trace_id), f"HTTP {reply.status}: not reached"
        assert not recorder.has_verified(sent.trace_id)
        assert reply.status >= 400

    for_each([c for c in cases_on(surface) if c.shape.unguarded and c.servable], check)
