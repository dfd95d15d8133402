"""A Django project (a sync WSGI host) that serves orra-di agents; see ../README.md."""
