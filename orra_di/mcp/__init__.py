"""MCP: the tools of MCP servers for every agent (client), and the agents as an MCP server.

Configured by the ``mcp`` settings section (:class:`McpSettings`); the SDK is the
``mcp`` extra (``pip install "orra-di[mcp]"``), imported only when a server is used.
Names load lazily, so ``orra-di --help`` (which registers ``orra_di.mcp.cli``) imports
neither pydantic nor the SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.mcp.client import McpClients, McpServerError
    from orra_di.mcp.settings import McpServerSettings, McpSettings
    from orra_di.mcp.tool import McpTool

__all__ = ["McpClients", "McpServerError", "McpServerSettings", "McpSettings", "McpTool"]

_ORIGIN = {
    "McpClients": "orra_di.mcp.client",
    "McpServerError": "orra_di.mcp.client",
    "McpServerSettings": "orra_di.mcp.settings",
    "McpSettings": "orra_di.mcp.settings",
    "McpTool": "orra_di.mcp.tool",
}


def __getattr__(name: str) -> Any:
    if name in _ORIGIN:
        return getattr(importlib.import_module(_ORIGIN[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
