"""A real uvicorn server on 127.0.0.1 around the gateway, in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn

from orra_di.containers import Container, lifespan
from orra_di.gateway import create_app
from orra_di.gateway.core import Gateway


@asynccontextmanager
async def live_server(container: Container) -> AsyncIterator[tuple[str, Gateway]]:
    """``(base URL, gateway)`` of a served gateway; stopped and drained on exit."""
    async with lifespan(container):
        app = create_app(container)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
        )
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server._serve)  # no signal capture inside a test
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                    await anyio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            try:
                yield f"http://127.0.0.1:{port}", app.state.gateway
            finally:
                server.should_exit = True
                await app.state.gateway.drain(10)
