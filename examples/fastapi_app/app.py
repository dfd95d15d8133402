"""``create_app()``: the container, its wiring and the FastAPI application.

The container is built here, the entry point, and nowhere else. The routes
module is wired to it, the application's tool is registered by overriding the
container's ``tool_factory`` provider, and the FastAPI lifespan opens and
closes the store and the LLM client through :func:`orra_di.containers.lifespan`.
orra-di's own gateway (extra ``[gateway]``) is mounted at ``/agents`` on the same
container: its REST, SSE, WebSocket and OpenAI-compatible endpoints and the chat
page serve the same agents and sessions as this app's routes.
Tests pass in a container whose ``llm`` (and settings) they have overridden.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dependency_injector import providers
from fastapi import FastAPI

from orra_di import ConfigurationError
from orra_di.containers import Container, lifespan
from orra_di.gateway import create_app as create_gateway

from . import routes
from .errors import install_error_handlers
from .tools import app_tools

__all__ = ["create_app"]


def create_app(container: Container | None = None) -> FastAPI:
    """The application, configured from the environment unless given a container.

    Wiring patches the routes module itself, so it serves one container at a
    time: build one app per process (the last app built owns the routes).
    """
    if container is None:
        container = Container()
    container.tool_factory.override(providers.Object(app_tools))
    container.wire(modules=[routes])

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        _check_wiring(container)
        async with lifespan(container):  # a bad store URL or missing extra fails here
            yield

    app = FastAPI(
        title="orra-di example",
        summary="LLM agents with namespaced, persistent sessions",
        lifespan=app_lifespan,
    )
    app.state.container = container
    app.include_router(routes.router)
    install_error_handlers(app)
    # The gateway opens nothing itself: this app's lifespan has opened the container.
    app.mount("/agents", create_gateway(container))  # POST /agents/v1/chat, page at /agents/
    return app


def _check_wiring(container: Container) -> None:
    """Refuse to start if the routes would get markers or another app's container."""
    try:
        wired = routes.wired_container()  # type: ignore[call-arg]  # wiring supplies it
    except TypeError:
        wired = None
    if wired is not container:
        raise ConfigurationError(
            f"{routes.__name__} is not wired to this app's container: call "
            "container.wire(modules=[routes]) in create_app, and build one app per process"
        )
