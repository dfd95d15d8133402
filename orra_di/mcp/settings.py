"""The ``mcp`` settings section (``ORRA_MCP__*``), composed by ``OrraSettings``.

Each entry of ``servers`` is one MCP server the application connects to: either a
program started with stdio (``command``) or a Streamable HTTP endpoint (``url``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["McpServerSettings", "McpSettings"]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,32}")


class McpServerSettings(BaseModel):
    """One MCP server: a stdio program (``command``) or a Streamable HTTP ``url``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    """Program to start and speak MCP with over its stdin/stdout (stdio transport)."""
    args: list[str] = Field(default_factory=list)
    """Arguments of ``command``."""
    env: dict[str, SecretStr] = Field(default_factory=dict)
    """Environment variables given to ``command``, on top of a small safe set (PATH,
    HOME, ...): the application's own environment, and so its secrets, is not passed on."""
    cwd: Path | None = None
    """Working directory of ``command`` (default: the application's)."""
    url: str | None = None
    """Streamable HTTP endpoint of a running server (``http://127.0.0.1:8000/mcp``)."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """HTTP headers sent with every request to ``url`` (``Authorization``, ...)."""
    prefix: str = ""
    """Put before each of this server's tool names (``gh_`` makes ``create_issue``
    ``gh_create_issue``): tells two servers' tools apart, and policies see the prefixed name."""
    start_timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Seconds to start and initialize this server; unset: ``mcp.start_timeout``."""
    call_timeout: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Seconds one tool call may take; unset: ``mcp.call_timeout``."""
    optional: bool = False
    """When true, a server that cannot start is logged and skipped; when false (the
    default), it stops the application at start-up with the reason."""

    @field_validator("prefix")
    @classmethod
    def _prefix_chars(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value):
            raise ValueError("a prefix is up to 32 letters, digits, '_' or '-'")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("an MCP server url starts with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of 'command' (stdio) or 'url' (Streamable HTTP)")
        if self.url is None and self.headers:
            raise ValueError("'headers' only apply to a 'url' server")
        if self.command is None and (self.args or self.env or self.cwd is not None):
            raise ValueError("'args', 'env' and 'cwd' only apply to a 'command' server")
        return self

    @property
    def transport(self) -> str:
        """``stdio`` or ``http``."""
        return "stdio" if self.command is not None else "http"


class McpSettings(BaseModel):
    """MCP servers whose tools every agent gets, and how long to wait for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, McpServerSettings] = Field(
        default_factory=dict,
        description='a table of servers by name, each with "command" (stdio) or "url" '
        '(Streamable HTTP); JSON in an environment variable: {"files": {"command": "npx", '
        '"args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"]}}',
    )
    """Servers by name, each with ``command`` (+ ``args``, ``env``, ``cwd``) or ``url``
    (+ ``headers``), and optionally ``prefix``, ``start_timeout``, ``call_timeout``,
    ``optional`` (JSON in an environment variable)."""
    start_timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Default seconds to start a server, initialize it and list its tools."""
    call_timeout: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Default seconds one tool call may take before it becomes an error result."""
    max_result_chars: int = Field(100_000, gt=0)
    """Longest tool result kept, in characters (the rest is cut with a marker)."""
    serve_token: SecretStr | None = None
    """Bearer token every request to ``orra-di mcp serve --http`` must carry; that
    command refuses to start without one."""

    @field_validator("servers")
    @classmethod
    def _names(cls, servers: dict[str, McpServerSettings]) -> dict[str, McpServerSettings]:
        for name in servers:
            if not _NAME.fullmatch(name):
                raise ValueError(f"server name {name!r}: use up to 64 letters, digits, '_' or '-'")
        return servers
