"""Which requests a middleware verifies, decided so that a reading it does not share
with the app's router can only guard a request, never let one through.

A middleware sees a request before the router does, and routers read paths
in ways no list of spellings can follow (Starlette's ``$`` also matches
before a final newline; werkzeug and Django decode WSGI paths as UTF-8;
Quart strips a mount point as a plain prefix, Litestar at its first
occurrence). So hubsig never asks "is this one of the guarded paths?".
It asks "is this request *plainly* one the app said needs no signature?",
and guards everything else:

- ``exempt=``: the app's other routes. A request passes unverified only
  when its path relative to the mount point is, character for character,
  an entry (or plainly below an entry ending in ``/``).
- ``paths=``: the guarded routes. A request passes unverified only when
  its path is *plain* (ASCII letters, digits and ``-._~!$&'()*+,=:@``,
  single slashes, no dot segment) and none of its readings, case and a
  trailing slash folded, is or is below an entry.
- neither: every request is guarded.

A path the router might read otherwise (a percent sign, a control
character, a backslash, ``;``, ``..``, a doubled slash, non-ASCII under
``paths=``, a mount point found elsewhere than at the start) is guarded,
and refused unless signed: a good request can be refused, loudly, but a
bad one is never admitted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from hubsig.errors import ConfigurationError

__all__ = ["PathGuard", "application_path", "must_verify", "relative_path"]

_PLAIN = re.compile(r"/|(?:/(?!\.\.?(?:/|$))[A-Za-z0-9\-._~!$&'()*+,=:@]+)+/?")
"""A path every router reads the same way: no escapes, no dot segments, no doubled slash."""

_UNSAFE_ENTRY = re.compile(r"%|\\|;|//|/\.\.?(?:/|$)")


def is_plain(path: str) -> bool:
    """Whether ``path`` is spelled so that no router can read it as another path."""
    return _PLAIN.fullmatch(path) is not None


def _folded(path: str) -> str:
    """A plain path with case and a trailing slash folded (``/Hooks/`` → ``/hooks``)."""
    return "/" + path.strip("/").casefold()


def application_path(path: str, root: str) -> str:
    """``path`` without its mount point ``root``, as Starlette's router computes it."""
    return relative_path(path, root) or path


def relative_path(path: str, root: str) -> str | None:
    """``path`` below the mount point ``root``, or ``None`` where routers could disagree.

    Servers and frameworks either keep the mount point in the path or strip
    it; where ``root`` stands at the start of ``path`` at a segment boundary
    every router strips it, where it stands nowhere in ``path`` none does.
    Anywhere else (``/apihooks`` below ``/api``, ``/x/api/hooks``) Quart and
    Litestar read the path otherwise than Starlette: ``None``, so the
    request is guarded.
    """
    root = root.rstrip("/")
    if not root:
        return path
    if path == root or path.startswith(root + "/"):
        return path[len(root) :] or "/"
    return None if root in path else path


class PathGuard:
    """Decides whether a request must carry a valid signature (see the module's rule).

    ``paths`` and ``exempt`` are exclusive; ``None`` for both guards every
    request. Raises ``ConfigurationError`` for an empty list, an entry not
    starting with ``/``, an entry holding a control character, or an
    ``exempt`` entry spelled so that a router could read it otherwise.
    """

    __slots__ = (
        "_exempt",
        "_exempt_prefixes",
        "_guarded",
        "_guarded_prefixes",
        "exempt",
        "guards_everything",
        "paths",
    )

    def __init__(
        self, paths: Sequence[str] | str | None, exempt: Sequence[str] | str | None = None
    ) -> None:
        if paths is not None and exempt is not None:
            raise ConfigurationError(
                "give paths= (the guarded routes) or exempt= (the app's other routes), not both"
            )
        self.paths = _check_entries("paths", paths)
        self.exempt = _check_entries("exempt", exempt)
        for entry in self.exempt or ():
            if _UNSAFE_ENTRY.search(entry):
                raise ConfigurationError(
                    f"exempt entry {entry!r} is not a plain path: no '%', '\\', ';', '//' "
                    "or dot segments, since routers would read it otherwise"
                )
        # "/" is the root route itself; any other entry ending in "/" is a prefix.
        self._exempt = frozenset(e for e in self.exempt or () if e == "/" or e[-1] != "/")
        self._exempt_prefixes = tuple(e for e in self.exempt or () if e != "/" and e[-1] == "/")
        self._guarded = frozenset(_folded(p) for p in self.paths or () if not p.endswith("/"))
        self._guarded_prefixes = tuple(_folded(p) for p in self.paths or () if p.endswith("/"))
        self.guards_everything = self.paths is None and self.exempt is None
        """Whether every request is guarded (neither ``paths`` nor ``exempt`` given)."""

    def guards(self, relative: str | None, *spellings: str) -> bool:
        """Whether a request must carry a valid signature.

        ``relative`` is its path below the mount point exactly as the app's
        router matches it (``None`` where that is unclear, which guards it);
        ``spellings`` are other readings of the same path (the full path),
        each of which can only add to what ``paths=`` guards.
        """
        if relative is None or self.guards_everything:
            return True
        if self.exempt is not None:
            return not self._is_exempt(relative)
        for path in (relative, *spellings):
            if not is_plain(path) or self._covers(_folded(path)):
                return True
        return False

    def _is_exempt(self, path: str) -> bool:
        if path in self._exempt:
            return True
        return is_plain(path) and any(path.startswith(p) for p in self._exempt_prefixes)

    def _covers(self, folded: str) -> bool:
        if folded in self._guarded:
            return True
        return any(
            prefix == "/" or folded == prefix or folded.startswith(prefix + "/")
            for prefix in self._guarded_prefixes
        )


def must_verify(
    guard: PathGuard, relative: str | None, full: str, routed_to_exempt: Callable[[], bool]
) -> bool:
    """The one question every middleware asks: must this request carry a valid signature?

    ``relative`` is its path below the mount point as the router matches it
    (``None`` when unclear: verified), ``full`` the path in full. A request
    that looks exempt passes unverified only if ``routed_to_exempt()``, the
    app's own router asked about this request, agrees.
    """
    if guard.guards(relative, full):
        return True
    return guard.exempt is not None and not routed_to_exempt()


def _check_entries(name: str, entries: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if entries is None:
        return None
    if isinstance(entries, str):
        entries = (entries,)
    wrong = f"{name} must be a non-empty list of paths starting with '/'"
    try:
        checked = tuple(entries)
    except TypeError:
        raise ConfigurationError(wrong) from None
    if not checked or not all(isinstance(e, str) and e.startswith("/") for e in checked):
        raise ConfigurationError(wrong)
    for entry in checked:
        if not entry.isprintable():
            raise ConfigurationError(f"{name} entry {entry!r} holds a control character")
        if any(mark in entry for mark in "{}<>"):
            raise ConfigurationError(
                f"{name} entry {entry!r} is a route template, not a path: hubsig matches paths "
                "as requests spell them; give the prefix the routes share, ending in '/'"
            )
    return checked
