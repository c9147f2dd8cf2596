"""A Django receiver in one file: settings, the URL, a guarded view, WSGI and ASGI applications.

Run: HUBSIG_SECRET=... gunicorn examples.django_app:application
 or: HUBSIG_SECRET=... uvicorn examples.django_app:asgi_application
"""

from __future__ import annotations

import os

from django.conf import settings

import hubsig
from hubsig.stores import MemoryStore

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-not-a-secret",  # noqa: S106 (Django's own key, unused here)
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["hubsig.django"],  # checks HUBSIG when Django starts
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    HUBSIG={
        "secret": os.environ.get("HUBSIG_SECRET"),
        "scheme": os.environ.get("HUBSIG_SCHEME", "genesys-multicloud"),
        "store": MemoryStore(),  # one process: see the README
    },
)

from django.core.asgi import get_asgi_application  # noqa: E402 (after settings)
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

from hubsig.django import webhook_view  # noqa: E402

application = get_wsgi_application()
asgi_application = get_asgi_application()


@webhook_view()  # POST only, CSRF-exempt, settings from HUBSIG
def interactions(request: HttpRequest) -> JsonResponse:
    delivery = hubsig.delivery_of(request)
    return JsonResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())


urlpatterns = [path("webhooks/interactions", interactions)]
