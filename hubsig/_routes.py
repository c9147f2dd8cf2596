"""The app's own router, asked at start-up whether ``paths=`` and ``exempt=`` name its routes.

A middleware's path settings are written by hand, apart from the routes
they describe: a forgotten router prefix or a misspelt entry turns into a
route nobody meant to leave unguarded, or a health check refused at 3 a.m.
Where hubsig can see the router (Starlette and FastAPI, Litestar,
werkzeug's map in Flask and Quart, Django's URL conf) it asks it about each
exact entry and stops the start-up for one that matches no route. It
imports no framework: a router is recognised by what it offers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from hubsig._paths import PathGuard
from hubsig.errors import ConfigurationError

__all__ = ["RouteOracle", "check_routes", "find_router"]

RouteOracle = Callable[[str], bool]
"""Whether the app's router sends a request for this path to a route (any method)."""

_LINKS = ("app", "wsgi_app", "__self__", "handler", "_app", "application")


def find_router(*apps: object) -> RouteOracle | None:
    """The router of the first of ``apps`` (or of what they wrap) that hubsig recognises."""
    for app in apps:
        seen: set[int] = set()
        node: object = app
        while node is not None and id(node) not in seen and len(seen) < 64:
            seen.add(id(node))
            oracle = _oracle_of(node)
            if oracle is not None:
                return oracle
            node = next((getattr(node, link) for link in _LINKS if hasattr(node, link)), None)
    return None


def check_routes(guard: PathGuard, oracle: RouteOracle | None, adapter: str) -> None:
    """Raise ``ConfigurationError`` naming each exact path setting that no route matches."""
    if oracle is None:
        return
    for name, entries in (("paths", guard.paths), ("exempt", guard.exempt)):
        missing = [entry for entry in _exact(entries) if not oracle(entry)]
        if missing:
            fix = (
                "a request to it would be refused; write the route's full path below the "
                "mount point (with any router prefix), or remove the entry"
                if name == "exempt"
                else "the route it means would go unguarded; write the route's full path "
                "below the mount point (with any router prefix), or guard the whole app"
            )
            raise ConfigurationError(
                f"{adapter}: {name}= entr{'ies' if len(missing) > 1 else 'y'} "
                f"{', '.join(map(repr, missing))} match no route of the app: {fix}"
            )


def _exact(entries: Iterable[str] | None) -> list[str]:
    return [entry for entry in entries or () if entry == "/" or not entry.endswith("/")]


def _oracle_of(node: object) -> RouteOracle | None:
    routes = getattr(node, "routes", None)
    if isinstance(routes, list) and routes and all(hasattr(r, "matches") for r in routes):
        return lambda path: _starlette_routes(routes, _http_scope(path))
    router = getattr(node, "asgi_router", None)
    if callable(getattr(router, "handle_routing", None)):
        return lambda path: _litestar_routes(router, path)
    url_map = getattr(node, "url_map", None)
    if callable(getattr(url_map, "bind", None)):
        return lambda path: _werkzeug_routes(url_map, path)
    if type(node).__module__.startswith("django.core.handlers") and "django.urls" in sys.modules:
        return _django_routes
    return None


def _http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "method": "POST",
        "headers": [],
        "query_string": b"",
    }


def _starlette_routes(routes: list[Any], scope: dict[str, Any]) -> bool:
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # noqa: S112 - a route that cannot judge this scope does not take it
            continue
        if getattr(match, "name", "NONE") == "NONE":
            continue
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner:  # a Mount of a router: ask the routes below
            if _starlette_routes(inner, {**scope, **child}):
                return True
            continue
        return True
    return False


def _litestar_routes(router: Any, path: str) -> bool:
    try:
        router.handle_routing(path=path, method="POST")
    except Exception as error:
        return type(error).__name__ == "MethodNotAllowedException"
    return True


def _werkzeug_routes(url_map: Any, path: str) -> bool:
    try:
        url_map.bind("localhost").match(path, method="POST")
    except Exception as error:  # NotFound, or RequestRedirect: another spelling is the route
        return type(error).__name__ == "MethodNotAllowed"
    return True


def _django_routes(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return False
    return True
