"""Django: a view decorator, configured in ``settings.py``, for WSGI and ASGI Django alike.

``@webhook_view()`` takes its settings from ``settings.HUBSIG`` (a dict;
``"hubsig.django"`` in ``INSTALLED_APPS`` checks it when Django starts), and
keywords given to it replace those. The decorated view (sync or async) is
exempt from CSRF (a webhook proves itself with its signature, not a cookie),
answers only POST (405 otherwise), and runs only on verified deliveries;
with ``store`` each event is processed once (a 2xx from the view completes
its claims). Needs ``pip install 'hubsig[django]'``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.conf import settings as django_settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, UnreadablePostError

from hubsig import kit
from hubsig.errors import BodyTooLarge, ConfigurationError, IncompleteBody
from hubsig.kit import deliver, drive, settings_from_mapping
from hubsig.kit.wsgi import deliver_sync, environ_headers

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SETTING", "config_from_settings", "webhook_view"]

SETTING = "HUBSIG"
"""The name of the ``settings.py`` dict of hubsig settings."""

ViewT = TypeVar("ViewT", bound=Callable[..., Any])
ADAPTER = "hubsig.django.webhook_view"


def config_from_settings(**overrides: Unpack[kit.WebhookSettings]) -> kit.WebhookConfig:
    """The configuration ``settings.HUBSIG`` describes, with ``overrides`` in its place.

    Raises ``ConfigurationError`` naming the setting when one is wrong, or
    when ``HUBSIG`` is missing and no secret was given.
    """
    configured = getattr(django_settings, SETTING, {})
    if not isinstance(configured, dict):
        raise ConfigurationError(f"settings.{SETTING} must be a dict of hubsig settings")
    settings = settings_from_mapping(configured, lambda name: f"settings.{SETTING}[{name!r}]")
    return kit.config_from(None, {**settings, **overrides}, f"settings.{SETTING}")


def webhook_view(
    view: None = None,
    /,
    *,
    config: kit.WebhookConfig | None = None,
    **settings: Unpack[kit.WebhookSettings],
) -> Callable[[ViewT], ViewT]:
    """Decorate a Django view (sync or async) so that it runs only on verified deliveries.

    Raises ``TypeError`` when used without parentheses and ``ConfigurationError``
    for a bad setting, both when the module is imported.
    """
    if view is not None:  # @webhook_view: the view arrives where settings belong
        name = getattr(view, "__name__", type(view).__name__)
        raise TypeError(
            f"use @hubsig.django.webhook_view() with parentheses, above {name}: the decorator "
            f"reads settings.{SETTING} (or its keywords) when it is applied"
        )
    if config is None:
        config = config_from_settings(**settings)
    elif settings:
        raise ConfigurationError(f"{ADAPTER}: pass either config= or settings, not both")
    if config.paths is not None:
        raise ConfigurationError(f"{ADAPTER}: a view guards every request it gets (no paths=)")
    receiver = kit.Receiver.of(config)

    def decorate(view: ViewT) -> ViewT:
        if iscoroutinefunction(view):
            wrapped: Callable[..., Any] = _async_view(receiver, view)
        else:
            if receiver.store_is_async:
                raise ConfigurationError(f"{ADAPTER}: a sync view cannot await an asyncio store")
            wrapped = _sync_view(receiver, view)
        wrapped.csrf_exempt = True  # type: ignore[attr-defined]
        return functools.wraps(view)(wrapped)  # type: ignore[return-value]

    return decorate


def _sync_view(receiver: kit.Receiver, view: Callable[..., HttpResponse]) -> Callable[..., Any]:
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        trace, view_of = _request(request)
        answered: list[HttpResponse] = []

        def handle(delivery: kit.Delivery) -> kit.Outcome:
            _hand_over(request, delivery)
            answered.append(view(request, *args, **kwargs))
            status = answered[0].status_code
            return kit.answered(status)

        reply = deliver_sync(receiver, view_of, trace, lambda check: _read(request, check), handle)
        return _answer(reply, answered, trace)

    return guarded


def _async_view(
    receiver: kit.Receiver, view: Callable[..., Awaitable[HttpResponse]]
) -> Callable[..., Any]:
    async def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        trace, view_of = _request(request)
        answered: list[HttpResponse] = []

        async def handle(delivery: kit.Delivery) -> kit.Outcome:
            _hand_over(request, delivery)
            answered.append(await view(request, *args, **kwargs))
            status = answered[0].status_code
            return kit.answered(status)

        async def read(check: kit.DeliveryCheck) -> bytes:
            return _read(request, check)

        with kit.use_trace(trace):
            flow = deliver(receiver, view_of, trace, time.monotonic())
            reply = await drive(flow, read, handle, store_blocks=receiver.store_blocks)
        return _answer(reply, answered, trace)

    return guarded


def _hand_over(request: HttpRequest, delivery: kit.Delivery) -> None:
    """Give the view the delivery, and a ``request.body`` of only the events to process."""
    request.META[kit.ENVIRON_KEY] = delivery
    request._body = delivery.fresh_body()  # Django caches the body here


def _request(request: HttpRequest) -> tuple[kit.TraceContext, kit.RequestView]:
    # The headers straight from META, as WSGI and ASGI Django both hold them (HTTP_*,
    # CONTENT_TYPE, CONTENT_LENGTH): request.headers would build a second mapping first.
    headers = kit.Headers(environ_headers(request.META))
    trace = kit.TraceContext.from_headers(headers)
    return trace, kit.RequestView(request.method or "GET", request.path_info, headers)


def _read(request: HttpRequest, check: kit.DeliveryCheck) -> bytes:
    """Django reads the body itself (bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE``; under
    ASGI before the view runs), so the check gets it whole, and ``request.body`` works."""
    try:
        body: bytes = request.body
    except RequestDataTooBig:
        raise BodyTooLarge("the body is larger than Django's DATA_UPLOAD_MAX_MEMORY_SIZE") from None
    except UnreadablePostError:
        raise IncompleteBody("the body could not be read to its end") from None
    return kit.read_body_sync(check, lambda: (body, True))


def _answer(
    reply: kit.Reply | None, answered: list[HttpResponse], trace: kit.TraceContext
) -> HttpResponse:
    if reply is None:
        response = answered[0]
        if kit.TRACE_HEADER not in response:
            response[kit.TRACE_HEADER] = trace.trace_id
        return response
    # Content-Length is Django's own, Connection hop-by-hop; with its Content-Type given,
    # Django sets no default one first.
    headers = {name: value for name, value in reply.headers if name not in _LEFT_TO_DJANGO}
    return HttpResponse(reply.body, status=reply.status, headers=headers)


_LEFT_TO_DJANGO = frozenset(("content-length", "connection"))
