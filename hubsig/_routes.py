"""The app's own router: asked at start-up about every path setting, and about exempt requests.

A middleware's path settings are written by hand, apart from the routes
they describe: a forgotten router prefix or a misspelt entry turns into a
route nobody meant to leave unguarded, or a health check refused at 3 a.m.
Where hubsig can see the router (Starlette and FastAPI, Litestar,
werkzeug's map in Flask and Quart, Django's URL conf) it asks it about each
exact entry at start-up and stops the start-up for one that matches no
route.

And a request hubsig would let through unverified (it looks exempt) is let
through only if the router, asked with the request as the server built it
(``root_path`` and all), sends it to the route the exempt entry names, or
to a route declared below an exempt prefix: where frameworks strip a mount
point in their own ways (Quart, Falcon, Litestar behind its router), only
the router knows. Where hubsig does not recognise the router, only exact
entries are honoured, and only with no mount point.

A router is recognised by what it offers; a framework's own module is
imported only for an app of that framework.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from hubsig._paths import PathGuard
from hubsig.errors import ConfigurationError

__all__ = ["ExemptRoutes", "Router", "check_routes", "find_router"]

_LINKS = ("app", "wsgi_app", "__self__", "handler", "_app", "application")

Template = Callable[[Mapping[str, Any]], "str | None"]


Endpoints = Callable[[], "Iterable[tuple[str, Callable[..., Any]]]"]


class Router:
    """One recognised router: ``template`` gives the path template of the route a request
    (an ASGI scope or a WSGI environ) goes to, ``None`` for no route; ``endpoints`` lists
    ``(template, handler)`` for every route, where the framework can say."""

    __slots__ = ("endpoints", "kind", "template")

    def __init__(self, kind: str, template: Template, endpoints: Endpoints = tuple) -> None:
        self.kind = kind
        self.template = template
        self.endpoints = endpoints

    def routes(self, path: str) -> bool:
        """Whether a request for ``path`` (no mount point) goes to a route, any method."""
        return self.route_template(path) is not None

    def route_template(self, path: str) -> str | None:
        """The template of the route at ``path`` (no mount point), whatever its methods."""
        for method in _METHODS:
            template = self.template(_request(path, method))
            if template is not None:
                return template
        return None


def find_router(*apps: object) -> Router | None:
    """The router of the first of ``apps`` (or of what they wrap) that hubsig recognises."""
    for app in apps:
        seen: set[int] = set()
        node: object = app
        while node is not None and id(node) not in seen and len(seen) < 64:
            seen.add(id(node))
            router = _router_of(node)
            if router is not None:
                return router
            node = next((getattr(node, link) for link in _LINKS if hasattr(node, link)), None)
    return None


def check_routes(guard: PathGuard, router: Router | None, adapter: str) -> None:
    """Raise ``ConfigurationError`` naming each exact path setting no route matches, or, where
    the router is unknown, each exempt prefix (which only the router could confine)."""
    if router is None:
        prefixes = [e for e in guard.exempt or () if e != "/" and e.endswith("/")]
        if prefixes:
            raise ConfigurationError(
                f"{adapter}: hubsig cannot see this app's router, so it cannot tell which routes "
                f"lie below exempt prefix {prefixes[0]!r}: list the exempt routes' exact paths"
            )
        return
    for name, entries in (("paths", guard.paths), ("exempt", guard.exempt)):
        missing = [entry for entry in _exact(entries) if not router.routes(entry)]
        if missing:
            fix = (
                "a request to it would be refused; write the route's full path below the "
                "mount point (with any router prefix), or remove the entry"
                if name == "exempt"
                else "the route it means would go unguarded; write the route's full path "
                "below the mount point (with any router prefix), or guard the whole app"
            )
            known = sorted({template for template, _ in router.endpoints()})
            close = difflib.get_close_matches(missing[0], known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"{adapter}: {name}= entr{'ies' if len(missing) > 1 else 'y'} "
                f"{', '.join(map(repr, missing))} match{'' if len(missing) > 1 else 'es'} no "
                f"route of the app{hint}: {fix}"
            )
    for template, handler in router.endpoints():
        if _reads_its_delivery(handler) and not guard.guards(_sample_path(template)):
            raise ConfigurationError(
                f"{adapter}: the route {template!r} reads hubsig.delivery_of, but the "
                f"middleware lets its requests through unverified ({_why(guard)}): it would "
                "never get a delivery; guard it"
            )


def _why(guard: PathGuard) -> str:
    return "it is exempt=" if guard.exempt is not None else "paths= does not cover it"


def _reads_its_delivery(handler: Callable[..., Any]) -> bool:
    """Whether a handler's own code names ``delivery_of`` (``hubsig.delivery_of(request)``)."""
    handler = inspect.unwrap(handler)
    code = getattr(getattr(handler, "__func__", handler), "__code__", None)
    return code is not None and "delivery_of" in code.co_names


_PARAMETER = re.compile(r"\{[^}]*\}|<[^>]*>")


def _sample_path(template: str) -> str:
    """A path the route's template matches, its parameters filled with a plain segment."""
    return _PARAMETER.sub("x", template) or "/"


class ExemptRoutes:
    """Whether the router sends a request hubsig would exempt to an exempt route.

    Built once the router is known: the template of each exact entry's route.
    """

    __slots__ = ("_prefixes", "_router", "_templates")

    def __init__(self, guard: PathGuard, router: Router | None) -> None:
        self._router = router
        entries = guard.exempt or ()
        self._prefixes = tuple(e for e in entries if e != "/" and e.endswith("/"))
        self._templates: frozenset[str] = frozenset()
        if router is not None:
            found = (router.route_template(entry) for entry in _exact(entries))
            self._templates = frozenset(t for t in found if t is not None)

    def confirm(self, request: Mapping[str, Any], root: str) -> bool:
        """Whether ``request`` (a scope or an environ) may pass unverified."""
        if self._router is None:
            return not root  # no router to ask: only where no mount point can be read two ways
        template = self._router.template(request)
        if template is None:
            return True  # no route takes it: nothing is there to reach (the router's 404)
        if template in self._templates:
            return True
        return any(template.startswith(prefix) for prefix in self._prefixes)


def _exact(entries: Iterable[str] | None) -> list[str]:
    return [entry for entry in entries or () if entry == "/" or not entry.endswith("/")]


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _request(path: str, method: str) -> dict[str, Any]:
    """A request for ``path`` with no mount point, as both an ASGI scope and a WSGI environ."""
    return {
        "type": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "method": method,
        "headers": [],
        "query_string": b"",
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),  # as PEP 3333 carries it
        "SCRIPT_NAME": "",
        "REQUEST_METHOD": method,
    }


def _method(request: Mapping[str, Any]) -> str:
    method = request.get("method") or request.get("REQUEST_METHOD") or "GET"
    return str(method)


def _router_of(node: object) -> Router | None:
    routes = getattr(node, "routes", None)
    if isinstance(routes, list) and routes and all(hasattr(r, "matches") for r in routes):
        return Router(
            "starlette",
            lambda scope: _starlette_template(routes, dict(scope), ""),
            lambda: _starlette_endpoints(routes, ""),
        )
    asgi_router = getattr(node, "asgi_router", None)
    if callable(getattr(asgi_router, "handle_routing", None)):
        return Router(
            "litestar",
            lambda scope: _litestar_template(asgi_router, scope),
            lambda: _litestar_endpoints(getattr(node, "routes", ())),
        )
    url_map = getattr(node, "url_map", None)
    if callable(getattr(url_map, "bind", None)):
        quart = type(node).__module__.startswith("quart")
        views = getattr(node, "view_functions", {})
        return Router(
            "werkzeug",
            lambda request: _werkzeug_template(url_map, request, quart),
            lambda: _werkzeug_endpoints(url_map, views),
        )
    if type(node).__module__.startswith("django.core.handlers") and "django.urls" in sys.modules:
        return Router("django", _django_template)
    return None


def _starlette_template(routes: list[Any], scope: dict[str, Any], prefix: str) -> str | None:
    """The route Starlette's router picks, as its full template (mount paths included): the
    first that matches fully, else the first that matches but for the method (its 405)."""
    partial: str | None = None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # noqa: S112 - a route that cannot judge this scope does not take it
            continue
        kind = getattr(match, "name", "NONE")
        if kind == "NONE":
            continue
        path = prefix + str(getattr(route, "path", ""))
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner:  # a Mount of a router: the route below decides
            found = _starlette_template(inner, {**scope, **child}, path)
            if found is None:
                continue
        else:
            found = path or "/"
        if kind == "FULL":
            return found
        partial = partial or found
    return partial


def _litestar_template(router: Any, scope: Mapping[str, Any]) -> str | None:
    """The route Litestar picks: the path as its ``ASGIRouter`` reads it (split at the first
    occurrence of ``root_path``, slashes folded), or the template it already chose."""
    chosen = scope.get("path_template")
    if isinstance(chosen, str):
        return chosen
    from litestar.utils.path import normalize_path

    path: str = scope["path"]
    root = scope.get("root_path") or ""
    if root:
        path = path.split(root, maxsplit=1)[-1]
    try:
        found = router.handle_routing(path=normalize_path(path), method=_method(scope))
    except Exception:  # no route, or another method: nothing runs
        return None
    template: str = found[4]
    return template


def _werkzeug_template(url_map: Any, request: Mapping[str, Any], quart: bool) -> str | None:
    """The rule werkzeug matches: for Quart, the path as Quart strips ``root_path`` (a path
    outside it, or the root path itself, becomes ``" "``); for Flask, ``PATH_INFO``."""
    if "PATH_INFO" in request and not quart:
        from hubsig.kit.wsgi import routed_path

        path = routed_path(request)
        if path is None:
            return None
    else:
        path = request["path"]
        root = request.get("root_path") or ""
        if quart and root:
            path = " " if path == root or not path.startswith(root) else path[len(root) :]
    try:
        rule, _ = url_map.bind("localhost").match(path, method=_method(request), return_rule=True)
    except Exception:  # NotFound, a redirect, or another method: no handler runs
        return None
    template: str = rule.rule
    return template


def _django_template(environ: Mapping[str, Any]) -> str | None:
    from django.urls import Resolver404, resolve

    from hubsig.kit.wsgi import routed_path

    path = routed_path(environ)
    if path is None:
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return "/" + str(match.route)


def _starlette_endpoints(routes: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for route in routes:
        path = prefix + str(getattr(route, "path", ""))
        inner = getattr(route, "routes", None)
        if isinstance(inner, list) and inner:
            yield from _starlette_endpoints(inner, path)
        elif callable(getattr(route, "endpoint", None)):
            yield path, route.endpoint


def _litestar_endpoints(routes: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    for route in routes:
        for handler in getattr(route, "route_handlers", ()):
            fn = getattr(handler, "fn", None)
            if callable(fn):
                yield str(route.path), fn


def _werkzeug_endpoints(url_map: Any, views: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for rule in url_map.iter_rules():
        if rule.endpoint in views:
            yield str(rule.rule), views[rule.endpoint]
