"""MCP: the tools of MCP servers for every agent (client), and the agents as an MCP server.

Configured by the ``mcp`` settings section (:class:`McpSettings`); the SDK is the
``mcp`` extra (``pip install "orra-di[mcp]"``), imported only when a server is used.
"""

from orra_di.mcp.settings import McpServerSettings, McpSettings

__all__ = ["McpServerSettings", "McpSettings"]
