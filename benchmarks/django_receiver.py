"""The Django receivers of ``benchmarks.receivers``: a Django project in one module.

``build(name)`` configures Django (once per process) and returns the WSGI app
of ``django-hand`` or ``django-hubsig``, both on the route ``/hook``.

The settings are what ``django-admin startproject`` writes that a request
passes through: ``DEBUG=False``, ``ALLOWED_HOSTS=["*"]`` and the project's
default ``MIDDLEWARE`` in full (security, sessions, common, CSRF,
authentication, messages, clickjacking), the same list for both receivers;
``INSTALLED_APPS`` holds only the apps that middleware needs (auth,
contenttypes, sessions, messages: no admin, no static files), and no
database is configured (neither view touches the session, the user or the
messages, so the lazy middleware never queries one).
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.bodies import SECRET

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
"""``django-admin startproject``'s default middleware, unchanged."""

urlpatterns: list[Any] = []


def configure() -> None:
    """Configure Django once per process, with this module as the URLconf."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks-only-django-key",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=MIDDLEWARE,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()


def build(name: str) -> Any:
    """The WSGI app of Django receiver ``name`` (one per process: it owns the URLconf)."""
    from django.core.wsgi import get_wsgi_application
    from django.urls import clear_url_caches, path

    urlpatterns[:] = [path("hook", view(name))]
    clear_url_caches()
    return get_wsgi_application()


def view(name: str) -> Any:
    """The view of Django receiver ``name`` (configuring Django first)."""
    configure()
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_POST

    import hubsig
    from benchmarks.receivers import _answer, _signed

    if name == "django-hand":

        @csrf_exempt  # a webhook proves itself with its signature, not a CSRF cookie
        @require_POST  # as flask-hand's @app.post and hubsig's 405
        def hand(request: HttpRequest) -> HttpResponse:
            body = request.body
            if not _signed(body, request.headers.get("x-hub-signature", "")):
                return JsonResponse({"status": {"code": 401, "message": "bad"}}, status=401)
            document = json.loads(body)
            return JsonResponse(_answer([e["entity"]["id"] for e in document["data"]["entities"]]))

        return hand
    if name == "django-hubsig":
        from hubsig.django import webhook_view

        @webhook_view(secret=SECRET)  # exempt from CSRF and POST only, by itself
        def guarded(request: HttpRequest) -> HttpResponse:
            return JsonResponse(_answer(list(hubsig.delivery_of(request).payload.entity_ids)))

        return guarded
    raise SystemExit(f"no receiver {name!r}")
