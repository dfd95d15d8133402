"""Django settings for the example, each from the environment with a development default.

``ORRA`` holds orra-di's settings as Django settings: a dict with the sections of
``orra_di.settings.OrraSettings`` (``{"store": {"url": ...}, "llm": {...}}``). What it
sets wins over ``ORRA_*`` variables; what it leaves out is read from them as usual, so
a deployment may configure orra-di either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "development-only-key" if DEBUG else "")
if not SECRET_KEY:  # every worker must share one key: no silent random default
    raise ImproperlyConfigured("set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for development)")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "orra_site.urls"
WSGI_APPLICATION = "orra_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

# orra-di: sessions beside Django's own database unless ORRA_STORE__URL says otherwise.
ORRA: dict[str, Any] = {}
if "ORRA_STORE__URL" not in os.environ:
    ORRA["store"] = {"url": f"sqlite:///{BASE_DIR / 'orra-sessions.sqlite3'}"}
