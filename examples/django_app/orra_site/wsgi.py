"""The WSGI application for gunicorn: ``gunicorn orra_site.wsgi`` (no ``--preload``).

The orra-di container is not built here but on a worker's first request, so
each worker process (forked by gunicorn) opens its own store connections.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orra_site.settings")

application = get_wsgi_application()
