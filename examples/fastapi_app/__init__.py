"""A FastAPI service that runs orra-di agents, wired with dependency-injector.

Start it with ``uvicorn fastapi_app.app:create_app --factory --app-dir examples``
(see README.md); the tests build it with :func:`fastapi_app.app.create_app`.
"""

from .app import create_app

__all__ = ["create_app"]
