"""``orra-di mcp list|serve``: the configured MCP servers, and the agents as one.

Imports stay light: ``cli.py`` registers this Typer at start-up; the SDK is imported
by a command only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.mcp.client import ServerView

__all__ = ["mcp_app"]

mcp_app = typer.Typer(
    help="MCP: the servers whose tools the agents get, and the agents as an MCP server "
    "(see docs/mcp.md).",
    no_args_is_help=True,
)


@mcp_app.command("list")
def mcp_list() -> None:
    """Start each configured server, show its status and tools, then stop them."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli
    from orra_di.mcp.client import McpClients, ServerStatus

    optional: set[str] = set()

    async def job(container: Container) -> list[ServerView]:
        settings = container.settings().mcp
        optional.update(name for name, server in settings.servers.items() if server.optional)
        async with McpClients(settings, strict=False) as clients:
            return clients.views()

    views = cli._run(job, open_resources=False)
    if not views:
        cli._out().print("no MCP servers configured (see mcp.servers in docs/mcp.md)")
        return
    servers = Table("server", "transport", "target", "status", "tools", "error")
    tools = Table("tool", "server", "description")
    for table in (servers, tools):
        for column in table.columns:
            column.overflow = "fold"
    for view in views:
        row = [view.name, view.transport, view.target, view.status.value, str(len(view.tools))]
        servers.add_row(*(Text(cell) for cell in row), Text(view.error or "-"))
        for name, description in view.tools:
            first = description.strip().splitlines()[0] if description.strip() else ""
            tools.add_row(Text(name), Text(view.name), Text(first))
    cli._out().print(servers)
    if tools.row_count:
        cli._out().print(tools)
    failed = [
        v.name for v in views if v.status is not ServerStatus.READY and v.name not in optional
    ]
    if failed:  # what start-up would refuse: a check in a script or a deploy fails too
        sys.stderr.write(f"error: {len(failed)} MCP server(s) not ready: {', '.join(failed)}\n")
        raise typer.Exit(1)


@mcp_app.command("serve")
def mcp_serve(
    http: Annotated[
        bool, typer.Option("--http", help="Serve Streamable HTTP instead of stdio.")
    ] = False,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on with --http.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on with --http.")
    ] = 8765,
) -> None:
    """Offer the configured agents as an MCP server: one tool per agent (input
    ``message``, output the answer), each MCP client with its own sessions
    ``mcp:<client>:<agent>``. stdio by default (for Claude Desktop and other hosts);
    with --http, Streamable HTTP at http://HOST:PORT/mcp behind a bearer token
    (``mcp.serve_token``)."""
    from orra_di import cli
    from orra_di.errors import ConfigurationError
    from orra_di.mcp.server import agents_server, require_bearer

    async def job(container: Container) -> None:
        server = agents_server(container.runtimes())
        if not http:
            await server.run_stdio_async()
            return
        token = container.settings().mcp.serve_token
        if token is None or not token.get_secret_value():
            raise ConfigurationError(
                "orra-di mcp serve --http needs a bearer token: set ORRA_MCP__SERVE_TOKEN "
                "(or mcp.serve_token in orra.toml)"
            )
        import uvicorn

        from orra_di.gateway.cli import cannot_listen, listen

        app = require_bearer(server.streamable_http_app(host=host), token.get_secret_value())
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")

        def announce(where: str) -> None:
            cli._err().print(f"MCP server on http://{where}/mcp; Ctrl-C to stop", markup=False)

        if not await listen(uvicorn.Server(config), announce):
            raise cannot_listen(host, port)

    cli._run(job)
