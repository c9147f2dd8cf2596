"""A Django project in one module: settings configured by the test, no scaffold."""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings

urlpatterns: list[Any] = []


def configure() -> None:
    """Configure Django once per process, with this module as the URLconf."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-only-django-key",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        # CSRF on, as in every real project: a webhook view must be exempt.
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()
