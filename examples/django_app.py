"""A Django receiver: the URL, a guarded view, and the WSGI and ASGI applications, with the
settings in ``examples/django_settings.py``.

Run: HUBSIG_SECRET=... gunicorn examples.django_app:application
 or: HUBSIG_SECRET=... uvicorn examples.django_app:asgi_application
"""

from __future__ import annotations

import logging
import os

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

import hubsig
from hubsig.django import webhook_view

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_settings")
application = get_wsgi_application()  # sets Django up: LOGGING, then the HUBSIG check
asgi_application = get_asgi_application()
log = logging.getLogger("interactions")


@webhook_view()  # POST only, CSRF-exempt, settings from HUBSIG
def interactions(request: HttpRequest) -> JsonResponse:
    delivery = hubsig.delivery_of(request)  # verified, parsed, and not processed before
    ids = delivery.payload.entity_ids
    log.info("handled %s trace_id=%s", ",".join(ids), delivery.trace.trace_id)
    return JsonResponse(hubsig.events_response(ids).to_dict())


urlpatterns = [path("webhooks/interactions", interactions)]
