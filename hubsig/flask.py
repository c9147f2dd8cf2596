"""Flask: a route decorator, and an extension configured from ``app.config``.

``webhooks = HubSig(app)`` (or ``HubSig()`` and ``init_app(app)``) reads the
``HUBSIG_<SETTING>`` keys of ``app.config`` (``HUBSIG_SECRET``,
``HUBSIG_SCHEME``, ``HUBSIG_STORE``, ...) and checks them there, unknown
keys included. A view under ``@app.post(...)`` and then
``@webhooks.webhook_view()`` runs only on verified deliveries, reads the
body as usual (``request.get_data()``, ``request.json``), and with a store
each event is processed once (a 2xx completes its claims).
``webhook_view(secret=...)`` works without the extension. Needs
``pip install 'hubsig[flask]'``.
"""

from __future__ import annotations

import difflib
import functools
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, Response, current_app, make_response, request

from hubsig import kit
from hubsig.errors import ConfigurationError
from hubsig.kit import SETTING_NAMES, settings_from_mapping
from hubsig.kit.wsgi import deliver_sync, environ_headers, read_body, refuse_async_store

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HubSig", "webhook_view"]

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
PREFIX = "HUBSIG_"
EXTENSION = "hubsig"


class HubSig:
    """The Flask extension: a configuration per app, from ``app.config`` and keywords."""

    def __init__(self, app: Flask | None = None, **settings: Unpack[kit.WebhookSettings]) -> None:
        self._settings = settings
        self._app = app
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build this app's configuration now; raises ``ConfigurationError`` if it is wrong,
        and ``TypeError`` if ``app`` is no Flask app (``@HubSig`` on a view, say)."""
        if not isinstance(getattr(app, "config", None), dict):
            raise TypeError(
                f"HubSig takes the Flask app, not {getattr(app, '__name__', type(app).__name__)}: "
                "webhooks = HubSig(app), then @webhooks.webhook_view() on each view"
            )
        configured: dict[str, Any] = {}
        for key, value in app.config.items():
            if key.startswith(PREFIX):
                name = key[len(PREFIX) :].lower()
                if name not in SETTING_NAMES:
                    close = difflib.get_close_matches(name, SETTING_NAMES, n=1)
                    hint = f"; did you mean {PREFIX}{close[0].upper()}?" if close else ""
                    raise ConfigurationError(f"app.config[{key!r}] is not a hubsig setting{hint}")
                configured[name] = value
        settings = settings_from_mapping(
            configured, lambda name: f"app.config['{PREFIX}{name.upper()}']"
        )
        config = kit.config_from(None, {**settings, **self._settings}, "hubsig.flask.HubSig")
        receiver = app.extensions[EXTENSION] = kit.Receiver.of(config)
        refuse_async_store(receiver, "hubsig.flask.HubSig")

    def webhook_view(self, view: None = None, /) -> Callable[[ViewT], ViewT]:
        """Decorate a view: it runs only on verified deliveries, with the app's configuration.

        Raises ``TypeError`` when used without parentheses, when the module is imported.
        """
        _refuse_bare(view, "@<your HubSig>.webhook_view()", "the extension's configuration")

        def decorate(view: ViewT) -> ViewT:
            if self._app is not None and view in self._app.view_functions.values():
                raise ConfigurationError(
                    f"{view.__name__} is already a route: put @webhook_view() beneath "
                    "@app.route/@app.post, or the route would run it unguarded"
                )

            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Response:
                receiver = current_app.extensions.get(EXTENSION)
                if receiver is None:
                    raise ConfigurationError("HubSig.init_app(app) was not called for this app")
                return _guarded(receiver, view, args, kwargs)

            return guarded  # type: ignore[return-value]

        return decorate


def webhook_view(
    view: None = None,
    /,
    *,
    config: kit.WebhookConfig | None = None,
    **settings: Unpack[kit.WebhookSettings],
) -> Callable[[ViewT], ViewT]:
    """Decorate a Flask view with its own settings: it runs only on verified deliveries.

    Raises ``TypeError`` when used without parentheses and ``ConfigurationError``
    for a bad setting, both when the module is imported.
    """
    _refuse_bare(view, "@hubsig.flask.webhook_view(secret=...)", "its settings")
    receiver = kit.Receiver.of(kit.config_from(config, settings, "hubsig.flask.webhook_view"))
    refuse_async_store(receiver, "hubsig.flask.webhook_view")

    def decorate(view: ViewT) -> ViewT:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Response:
            return _guarded(receiver, view, args, kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def _refuse_bare(view: object, spelling: str, needs: str) -> None:
    """The decorator applied without parentheses gets the view where settings belong:
    refuse it clearly, rather than with Python's "takes 0 positional arguments"."""
    if view is not None:
        name = getattr(view, "__name__", type(view).__name__)
        raise TypeError(
            f"use {spelling} with parentheses, above {name}: the decorator needs {needs}"
        )


def _guarded(receiver: kit.Receiver, view: Callable[..., Any], args: Any, kwargs: Any) -> Response:
    current = request._get_current_object()  # type: ignore[attr-defined]  # once, not per use
    environ = current.environ
    headers = kit.Headers(environ_headers(environ))
    trace = kit.TraceContext.from_headers(headers)
    answered: list[Response] = []

    def handle(delivery: kit.Delivery) -> kit.Outcome:
        environ[kit.ENVIRON_KEY] = delivery
        # The stream is spent: the view reads the same bytes as if nothing stood between.
        fresh = delivery.fresh_body()  # only the events to process now (see Delivery)
        environ["wsgi.input"] = io.BytesIO(fresh)
        environ["CONTENT_LENGTH"] = str(len(fresh))
        current.__dict__.pop("stream", None)  # werkzeug caches the stream it made
        answered.append(make_response(current_app.ensure_sync(view)(*args, **kwargs)))
        status = answered[0].status_code
        return kit.answered(status)

    view_of = kit.RequestView(current.method, current.path, headers)
    reply = deliver_sync(receiver, view_of, trace, lambda c: read_body(c, environ), handle)
    if reply is None:
        response = answered[0]
        response.headers.setdefault(kit.TRACE_HEADER, trace.trace_id)
        return response
    # Werkzeug sets Content-Length from the body itself (the reply's would be replaced);
    # Connection is the server's to decide (PEP 3333 forbids hop-by-hop headers).
    sent = [(name, value) for name, value in reply.headers if name not in _LEFT_TO_WERKZEUG]
    return Response(reply.body, reply.status, sent)


_LEFT_TO_WERKZEUG = frozenset(("content-length", "connection"))
