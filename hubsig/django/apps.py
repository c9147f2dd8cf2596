"""The Django app ``hubsig.django``: in ``INSTALLED_APPS``, it checks ``settings.HUBSIG``
when Django starts, so a wrong setting stops ``runserver``, gunicorn or uvicorn at once."""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hubsig.errors import ConfigurationError


class HubsigConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "hubsig.django"
    label = "hubsig"
    verbose_name = "hubsig"

    def ready(self) -> None:
        from hubsig.django import SETTING, config_from_settings

        if not hasattr(settings, SETTING):
            return  # every view gets its settings from webhook_view(...) itself
        try:
            config_from_settings()
        except ConfigurationError as error:
            raise ImproperlyConfigured(str(error)) from None
