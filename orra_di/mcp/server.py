"""The configured agents as an MCP server (``orra-di mcp serve``), on the official SDK.

One tool per agent, named after it (letters, digits, ``_`` and ``-`` kept, other
characters turned into ``_``); its input is ``message``, its output the agent's
answer. The conversation is the session ``mcp:<client>:<agent>``, ``<client>`` being
the name the MCP client gave in ``initialize`` (``claude-ai``, ``mcp``...), cleaned to
letters, digits, ``.``, ``_`` and ``-``: each MCP host keeps its own history with
each agent, and two hosts never share one.

Over Streamable HTTP the server listens on loopback unless told otherwise and every
request must carry ``Authorization: Bearer <mcp.serve_token>``.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any

from orra_di.errors import ConfigurationError, OrraError, install_hint
from orra_di.namespace import Namespace

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from orra_di.runtime_set import RuntimeMap

__all__ = ["agents_server", "client_segment", "require_bearer", "tool_name"]

_UNSAFE_TOOL = re.compile(r"[^A-Za-z0-9_-]")
_UNSAFE_CLIENT = re.compile(r"[^A-Za-z0-9._-]")


def tool_name(agent: str) -> str:
    """The MCP tool name of an agent (``Research Bot`` → ``Research_Bot``)."""
    return _UNSAFE_TOOL.sub("_", agent)[:64] or "agent"


def client_segment(name: str | None) -> str:
    """The namespace segment of an MCP client's name (``anonymous`` when it gave none)."""
    cleaned = _UNSAFE_CLIENT.sub("-", name or "").strip("-.")[:64]
    return cleaned or "anonymous"


def agents_server(runtimes: RuntimeMap, *, name: str = "orra-di") -> MCPServer:
    """An SDK ``MCPServer`` offering one tool per agent of ``runtimes``."""
    try:
        from mcp.server.mcpserver import Context, MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
    except ImportError as exc:
        raise ConfigurationError(
            f"orra-di mcp serve needs the mcp SDK: {install_hint('mcp')}"
        ) from exc

    server: MCPServer = MCPServer(
        name,
        instructions="Each tool is an orra-di agent: send it a message, get its answer. "
        "Each MCP client keeps its own conversation with each agent.",
        log_level="WARNING",
    )
    seen: dict[str, str] = {}
    for profile in runtimes.profiles:
        tool = tool_name(profile.name)
        if tool in seen:
            raise ConfigurationError(
                f"agents {seen[tool]!r} and {profile.name!r} would both be the MCP tool "
                f"{tool!r}; rename one"
            )
        seen[tool] = profile.name

        def make(agent: str) -> Any:
            async def ask(message: str, ctx: Context) -> str:
                params = ctx.session.client_params
                client = client_segment(params.client_info.name if params is not None else None)
                namespace = Namespace("mcp", client, runtimes.profile(agent).key)
                try:
                    result = await runtimes[agent].run(namespace, message)
                except OrraError as exc:
                    raise ToolError(str(exc)) from None
                return result.final_message.content

            # The SDK reads the signature; Context is imported here, not at module level.
            ask.__annotations__ = {"message": str, "ctx": Context, "return": str}
            return ask

        server.add_tool(
            make(profile.name),
            name=tool,
            description=f"Send a message to the agent {profile.name!r} and get its answer. "
            f"{profile.personality}".strip(),
            structured_output=False,
        )
    return server


def require_bearer(app: Any, token: str) -> Any:
    """ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get 401."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"text/plain"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
                return
        await app(scope, receive, send)

    return guarded
