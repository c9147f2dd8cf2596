"""A Django receiver in one file: settings, the URL, the view, and the WSGI application.

Run: HUBSIG_SECRET=... gunicorn examples.django_app:application
The view is exempt from CSRF: a webhook is authenticated by its signature, not a cookie.
"""

from __future__ import annotations

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-not-a-secret",  # noqa: S106 (Django's own key, unused here)
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
)

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after settings)
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

import hubsig  # noqa: E402
from hubsig.wsgi import HubSignatureMiddleware  # noqa: E402

config = hubsig.WebhookConfig.from_env(paths=["/webhooks/interactions"])


@csrf_exempt
@require_POST
def interactions(request: HttpRequest) -> JsonResponse:
    delivery = hubsig.delivery_of(request)
    return JsonResponse(hubsig.events_response(delivery.payload.entity_ids).to_dict())


urlpatterns = [path("webhooks/interactions", interactions)]
application = HubSignatureMiddleware(get_wsgi_application(), config=config)
