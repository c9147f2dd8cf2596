"""Which request paths a receiver guards, decided so that no spelling of a path slips past.

Routers match the *application-relative* path: the request path with the
mount point (ASGI ``root_path``, WSGI ``SCRIPT_NAME``) removed, which is how
Starlette's router, werkzeug and Django see it. ``paths=`` entries are
written that way, and a request is guarded when that path, or the full
path, matches an entry in any of its normal forms: percent-decoded,
repeated and trailing slashes folded, case folded, and each reading of dot
segments (resolved, or kept as names a route parameter can match),
backslashes and ``;parameters`` a router might make. Every form can only
add guarded requests, never remove one, so a router that is more lenient
than expected still never reaches a handler unverified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlparse

from hubsig.errors import ConfigurationError

__all__ = ["PathGuard", "application_path", "normalize_path", "path_forms"]

_SLASHES = re.compile(r"/{2,}")
_DECODE_ROUNDS = 4


def normalize_path(path: str) -> str:
    """The canonical form two spellings of one route share (``/A//b/./c;x/`` → ``/a/b/c``).

    A target not starting with ``/`` (``http://host/a``, ``http:/a``), which
    some servers pass on as the path, is reduced to its path, as Quart does;
    ``;parameters`` are dropped from every segment and dot segments resolved.
    ``path_forms`` gives every other way a router might read the same path.
    """
    return _form(_decoded(path), backslash_is_slash=True, resolve_dots=True, drop_params=True)


def path_forms(path: str) -> frozenset[str]:
    """Every canonical form of ``path`` a router might match: with ``\\`` read as a slash
    or not, dot segments resolved or kept as names (``/hooks/{channel}`` matches a
    channel named ``..``), ``;parameters`` dropped or kept. A path is guarded when
    any of them is, so no router's reading can slip out from under a guarded prefix."""
    decoded = _decoded(path)
    if not any(mark in decoded for mark in ("\\", ".", ";")):
        return frozenset((_form(decoded, True, True, True),))
    return frozenset(
        _form(decoded, backslash, dots, params)
        for backslash in (True, False)
        for dots in (True, False)
        for params in (True, False)
    )


def _decoded(path: str) -> str:
    path = target_path(path)
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    return path


def _form(path: str, backslash_is_slash: bool, resolve_dots: bool, drop_params: bool) -> str:
    if backslash_is_slash:
        path = path.replace("\\", "/")
    segments: list[str] = []
    for segment in _SLASHES.sub("/", path).split("/"):
        if drop_params:
            segment = segment.partition(";")[0]
        if resolve_dots and segment == "..":
            if segments:
                segments.pop()
        elif segment and not (resolve_dots and segment == "."):
            segments.append(segment)
    return "/" + "/".join(segments).casefold()


def target_path(path: str) -> str:
    """The path of a request target, whatever form a server passed it on in."""
    return path if path.startswith("/") else urlparse(path).path


def application_path(path: str, root: str) -> str:
    """``path`` without its mount point ``root``, as Starlette's router computes it."""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


class PathGuard:
    """Decides whether a request path must carry a valid signature.

    ``paths`` of ``None`` guards every path; an entry ending in ``/`` guards
    itself and everything under it. Raises ``ConfigurationError`` for an
    empty list or an entry not starting with ``/``.
    """

    __slots__ = ("_exact", "_normal", "_prefixes", "paths")

    def __init__(self, paths: Sequence[str] | str | None) -> None:
        self.paths = _check_paths(paths)
        self._exact = frozenset(self.paths or ())
        exact = [normalize_path(p) for p in self.paths or () if not p.endswith("/")]
        self._normal = frozenset(exact)
        self._prefixes = tuple(normalize_path(p) for p in self.paths or () if p.endswith("/"))

    @property
    def guards_everything(self) -> bool:
        return self.paths is None

    def guards(self, *candidates: str) -> bool:
        """Whether any of the spellings of one request's path is guarded."""
        if self.paths is None:
            return True
        for candidate in candidates:
            if candidate in self._exact:
                return True
        for candidate in candidates:
            for normal in path_forms(candidate):
                if normal in self._normal:
                    return True
                for prefix in self._prefixes:
                    if prefix == "/" or normal == prefix or normal.startswith(prefix + "/"):
                        return True
        return False

    def guards_scope(self, scope: Mapping[str, Any]) -> bool:
        """ASGI: the path as every router might read it below ``root_path``, and in full."""
        path = target_path(scope["path"])
        root: str = scope.get("root_path") or ""
        if not root:
            return self.guards(path)
        return self.guards(*_below_root(path, root))

    def guards_environ(self, environ: Mapping[str, Any]) -> bool:
        """WSGI: ``PATH_INFO`` (app-relative) and ``SCRIPT_NAME + PATH_INFO``."""
        path = target_path(environ.get("PATH_INFO") or "/")
        root = environ.get("SCRIPT_NAME") or ""
        return self.guards(*_below_root(path, root)) if root else self.guards(path)


def _below_root(path: str, root: str) -> tuple[str, ...]:
    """Every way a router strips ``root`` from ``path``, and the full path.

    Starlette strips it at a segment boundary, Quart by plain prefix
    (``/apiwebhooks`` → ``webhooks``), Litestar at its first occurrence
    anywhere; servers either include it in the path or not.
    """
    candidates = [path, application_path(path, root)]
    if path.startswith(root):
        candidates.append(path[len(root) :])
    else:
        candidates.append(root + path)
    if root in path:
        candidates.append(path.split(root, 1)[-1])
    return tuple(candidates)


def _check_paths(paths: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        paths = (paths,)
    try:
        checked = tuple(paths)
    except TypeError:
        checked = ()
    if not checked or not all(isinstance(path, str) and path.startswith("/") for path in checked):
        raise ConfigurationError("paths must be a non-empty list of paths starting with '/'")
    return checked
