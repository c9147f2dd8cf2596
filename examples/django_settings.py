"""The settings of the Django receiver in ``examples/django_app.py``: a project's ``settings.py``
holds the same hubsig lines (``"hubsig.django"`` in ``INSTALLED_APPS``, ``HUBSIG``, ``LOGGING``).
"""

from __future__ import annotations

import os

DEBUG = False
SECRET_KEY = "example-only-not-a-secret"  # noqa: S105 (Django's own key, unused here)
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_app"
TIME_ZONE = "UTC"  # also the time of the log lines (Django sets the process's zone)
INSTALLED_APPS = ["hubsig.django"]  # checks HUBSIG when Django starts
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # webhook_view() exempts its view
]

HUBSIG = {
    "secret": os.environ.get("HUBSIG_SECRET"),  # unset: Django refuses to start, naming it
    "scheme": os.environ.get("HUBSIG_SCHEME", "genesys-multicloud"),
}

# hubsig's refusals (WARNING) and INFO lines ("duplicate delivery acknowledged ...") and the
# view's own lines, each with its time and level.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"timed": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "timed"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
