"""The path guard: no spelling of a guarded path, and no mount point, lets a request past."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubsig import ConfigurationError
from hubsig._paths import PathGuard, application_path, normalize_path


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/hook", "/hook"),
        ("/", "/"),
        ("", "/"),
        ("/A//b/./c/", "/a/b/c"),
        ("//hook", "/hook"),
        ("/hook/", "/hook"),
        ("\\hook", "/hook"),
        ("/a\\b", "/a/b"),
        ("/./hook", "/hook"),
        ("/x/../hook", "/hook"),
        ("/../../hook", "/hook"),
        ("/%68ook", "/hook"),
        ("/%2568ook", "/hook"),  # encoded twice
        ("/%252568ook", "/hook"),  # three times
        ("/a%2Fb", "/a/b"),
        ("/a%5cb", "/a/b"),
        ("/x%2F..%2Fhook", "/hook"),
        ("/HOOK", "/hook"),
        ("/Stra\u00dfe", "/strasse"),
        ("/hook;jsessionid=1", "/hook"),
        ("/a;x/b;y/", "/a/b"),
        ("http://host.example/hook", "/hook"),
        ("HTTPS://Host:8443/Hook", "/hook"),
        ("http:/hook", "/hook"),
    ],
)
def test_normalize_path(path: str, normal: str) -> None:
    assert normalize_path(path) == normal


@pytest.mark.parametrize(
    ("path", "root", "relative"),
    [
        ("/api/hook", "/api", "/hook"),
        ("/api", "/api", "/"),
        ("/api/", "/api", "/"),
        ("/apihook", "/api", "/apihook"),
        ("/other/hook", "/api", "/other/hook"),
        ("/hook", "", "/hook"),
        ("/hook", "/api", "/hook"),
    ],
)
def test_application_path_removes_the_mount_point_only_at_a_segment_boundary(
    path: str, root: str, relative: str
) -> None:
    assert application_path(path, root) == relative


HOOK = PathGuard(["/hook", "/channels/"])


@pytest.mark.parametrize(
    "path",
    [
        "/hook",
        "/HOOK",
        "//hook",
        "/hook/",
        "/./hook",
        "/x/../hook",
        "/%68ook",
        "/%2568ook",
        "\\hook",
        "/channels",
        "/channels/",
        "/channels/chat",
        "/Channels//chat/",
        "/channels/%2e%2e/channels/x",
        "/hook;x=1",
        "/hook/;x",
        "http://attacker.example/hook",
    ],
)
def test_every_spelling_of_a_guarded_path_is_guarded(path: str) -> None:
    assert HOOK.guards(path)


@pytest.mark.parametrize(
    "path", ["/health", "/hook/extra", "/hooks", "/channelsx", "/channel", "/", "/other/hook"]
)
def test_other_paths_are_not_guarded(path: str) -> None:
    assert not HOOK.guards(path)


def test_a_root_entry_guards_everything_and_none_guards_everything() -> None:
    for guard in (PathGuard(["/"]), PathGuard(None)):
        assert guard.guards("/")
        assert guard.guards("/anything/at/all")
    assert PathGuard(None).guards_everything
    assert not PathGuard("/").guards_everything


def test_any_of_several_spellings_suffices() -> None:
    assert HOOK.guards("/health", "/hook")
    assert HOOK.guards("/HOOK", "/health")
    assert not HOOK.guards("/health", "/status")


def _scope(path: str, root: str | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "path": path}
    if root is not None:
        scope["root_path"] = root
    return scope


@pytest.mark.parametrize(
    ("entries", "path", "root"),
    [
        (["/hook"], "/api/hook", "/api"),  # path includes the mount point (Starlette 0.33+)
        (["/hook"], "/hook", "/api"),  # a server that splits them
        (["/api/hook"], "/api/hook", "/api"),  # the full path written in paths=
        (["/api/hook"], "/hook", "/api"),
        (["/hook"], "/hook", ""),
        (["/hook"], "/hook", None),
        (["/api/"], "/api", "/api"),
        (["/webhooks"], "/apiwebhooks", "/api"),  # Quart strips a plain prefix
        (["/hook"], "/x/api/hook", "/api"),  # Litestar strips the first occurrence anywhere
        (["/y/api/hook"], "/x/api/y/api/hook", "/api"),
        (["/hook"], "http://host.example/api/hook", "/api"),  # an absolute-form target
        (["/hook"], "http://host.example/hook", None),
    ],
)
def test_asgi_requests_under_a_mount_point_are_guarded(
    entries: list[str], path: str, root: str | None
) -> None:
    assert PathGuard(entries).guards_scope(_scope(path, root))


@pytest.mark.parametrize(
    ("entries", "path", "root"),
    [
        (["/hook"], "/api/health", "/api"),
        (["/hook"], "/health", "/api"),
        (["/api/hook"], "/api/other", "/api"),
        (["/api/hook"], "/apihook", "/api"),
        (["/api/hook"], "/hook", None),
        (["/xxxx/"], "/hook", None),
    ],
)
def test_asgi_requests_elsewhere_are_not_guarded(
    entries: list[str], path: str, root: str | None
) -> None:
    assert not PathGuard(entries).guards_scope(_scope(path, root))


@pytest.mark.parametrize(
    ("entries", "environ"),
    [
        (["/hook"], {"PATH_INFO": "/hook"}),
        (["/hook"], {"PATH_INFO": "/hook", "SCRIPT_NAME": "/api"}),
        (["/api/hook"], {"PATH_INFO": "/hook", "SCRIPT_NAME": "/api"}),
        (["/hook"], {"PATH_INFO": "", "SCRIPT_NAME": "/hook"}),  # the mount point itself
        (["/hook"], {"SCRIPT_NAME": "/hook"}),
        (["/"], {"PATH_INFO": ""}),
        (["/"], {}),
        (["/hook"], {"PATH_INFO": "http://host.example/hook"}),
        (["/hook"], {"PATH_INFO": "/x/api/hook", "SCRIPT_NAME": "/api"}),
    ],
)
def test_wsgi_requests_under_script_name_are_guarded(
    entries: list[str], environ: dict[str, str]
) -> None:
    assert PathGuard(entries).guards_environ(environ)


@pytest.mark.parametrize(
    ("entries", "environ"),
    [
        (["/hook"], {"PATH_INFO": "/health", "SCRIPT_NAME": "/api"}),
        (["/api/hook"], {"PATH_INFO": "/hook"}),
        (["/api/hook"], {"PATH_INFO": "/hook", "SCRIPT_NAME": ""}),
        (["/xxxx/"], {"PATH_INFO": "/hook"}),
    ],
)
def test_wsgi_requests_elsewhere_are_not_guarded(
    entries: list[str], environ: dict[str, str]
) -> None:
    assert not PathGuard(entries).guards_environ(environ)


def test_one_path_as_a_string_is_one_entry() -> None:
    guard = PathGuard("/hook")
    assert guard.paths == ("/hook",)
    assert guard.guards("/hook")
    assert not guard.guards("/h")


@pytest.mark.parametrize("paths", [[], (), "", "hook", ["/hook", "hook"], [b"/hook"], 42, [None]])
def test_unusable_paths_are_refused_at_construction(paths: Any) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PathGuard(paths)
    assert str(raised.value) == "paths must be a non-empty list of paths starting with '/'"


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=8)


def _respell(path: str, how: str) -> str:
    if how == "upper":
        return path.upper()
    if how == "double-slash":
        return path.replace("/", "//")
    if how == "dot":
        return path.replace("/", "/./")
    if how == "back-and-forth":
        return "/x/.." + path
    if how == "backslash":
        return path.replace("/", "\\")
    return path + "/"  # trailing slash


@given(
    segments=st.lists(_SEGMENT.filter(lambda s: s not in (".", "..")), min_size=1, max_size=4),
    tail=st.lists(_SEGMENT.filter(lambda s: s not in (".", "..")), max_size=2),
    prefix=st.booleans(),
    ways=st.lists(
        st.sampled_from(
            [
                "upper",
                "double-slash",
                "dot",
                "back-and-forth",
                "backslash",
                "slash",
            ]
        ),
        max_size=3,
    ),
    encodings=st.integers(0, 3),
)
def test_respelling_a_guarded_path_never_unguards_it(
    segments: list[str], tail: list[str], prefix: bool, ways: list[str], encodings: int
) -> None:
    """Up to three rounds of percent-encoding on top: past what any router decodes."""
    entry = "/" + "/".join(segments) + ("/" if prefix else "")
    path = "/" + "/".join(segments + (tail if prefix else []))
    for how in ways:
        path = _respell(path, how)
    for _ in range(encodings):
        path = "".join(f"%{ord(c):02X}" if c.isalnum() or c == "%" else c for c in path)
    guard = PathGuard([entry])
    assert guard.guards(path)
    assert guard.guards_scope(_scope("/mount" + path, "/mount"))
    assert guard.guards_environ({"PATH_INFO": path, "SCRIPT_NAME": "/mount"})


DOT_SPELLINGS = [
    "/webhooks/..",
    "/webhooks/%2e%2e",
    "/webhooks/%2E%2E",
    "/webhooks/%252e%252e",
    "/webhooks/..%5c",
    "/webhooks/x%5c..%5c..",
    "/webhooks/..;x",
    "/webhooks/./..",
]


@pytest.mark.parametrize("path", DOT_SPELLINGS)
def test_dot_segments_never_lift_a_path_out_of_a_guarded_prefix(path: str) -> None:
    """``/webhooks/{channel}`` matches a channel named ``..``: resolving it to ``/`` must
    not be the only reading, or the request escapes the ``/webhooks/`` guard."""
    assert PathGuard(["/webhooks/"]).guards(unquote(path))
    assert PathGuard(["/webhooks/"]).guards(path)


@pytest.mark.parametrize("path", DOT_SPELLINGS)
def test_a_templated_route_under_a_guarded_prefix_never_runs_unverified(path: str) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from hubsig.asgi import HubSignatureMiddleware

    ran: list[str] = []

    async def hook(request: Request) -> PlainTextResponse:
        ran.append(request.path_params["channel"])
        return PlainTextResponse("ran")

    app = Starlette(routes=[Route("/webhooks/{channel}", hook, methods=["POST"])])
    guarded = HubSignatureMiddleware(app, secret="s", paths=["/webhooks/"])
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    decoded = unquote(path)  # what a server puts in scope["path"]
    scope = {"type": "http", "method": "POST", "path": decoded, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": []}  # fmt: skip
    asyncio.run(guarded(scope, receive, send))
    assert ran == []
    assert sent[0]["status"] == 401
