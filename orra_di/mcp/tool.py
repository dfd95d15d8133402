"""``McpTool``: one tool of an MCP server, as a :class:`~orra_di.tool.Tool` agents call.

The result's content blocks become one text: text blocks as they are, an image,
audio or binary resource as a line describing it (kind, MIME type, size), a
resource link as its name and URI, an embedded text resource as its URI and text.
Nothing is dropped silently. ``isError`` results raise
:class:`~orra_di.errors.ToolExecutionError`, which the runtime turns into an error
result. Text is made valid UTF-8 (lone surrogates replaced) and cut at
``max_chars`` characters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.message import JsonValue
from orra_di.tool import ToolContext, ToolDefinition

if TYPE_CHECKING:
    from mcp.types import CallToolResult
    from mcp.types import Tool as RemoteTool

    from orra_di.mcp.client import McpServer

__all__ = ["McpTool", "render_result"]

_SURROGATE = re.compile("[\ud800-\udfff]")


class McpTool:
    """A tool of an MCP server; calls go through its server's connection."""

    def __init__(
        self, server: McpServer, remote: RemoteTool, *, name: str, max_chars: int = 100_000
    ) -> None:
        self.server = server
        self.remote_name = remote.name
        self.max_chars = max_chars
        self.gone = False
        """True once the server no longer lists the tool (or the servers were closed)."""
        self._name = name
        self._definition = self._define(remote)

    def _define(self, remote: RemoteTool) -> ToolDefinition:
        description = (
            remote.description or remote.title or f"{remote.name} (MCP server {self.server.name})"
        )
        schema = dict(remote.input_schema or {"type": "object", "properties": {}})
        return ToolDefinition(name=self._name, description=description, input_schema=schema)

    def update(self, remote: RemoteTool) -> None:
        """Take the server's new description and schema for the tool."""
        self._definition = self._define(remote)
        self.gone = False

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        if self.gone:
            raise ToolExecutionError(
                f"{self._name} is no longer offered by MCP server {self.server.name!r}"
            )
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolInputError("arguments: expected a JSON object")
        result = await self.server.call(self.remote_name, arguments)
        text = _cut(render_result(result), self.max_chars)
        if result.is_error:
            raise ToolExecutionError(text or f"{self._name} reported an error without a message")
        return text

    def __repr__(self) -> str:
        return f"McpTool({self._name!r}, server={self.server.name!r})"


def _clean(text: str) -> str:
    """Valid UTF-8: lone surrogates (JSON ``\\udc80`` escapes) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[output truncated: {limit} of {len(text)} characters shown]"


def _size(data: str) -> str:
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data) * 3 // 4
    return f"{n} bytes"


def _block(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return _clean(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, {_size(block.data)}]"
    if kind == "resource_link":
        mime = f", {block.mime_type}" if block.mime_type else ""
        label = block.title or block.name
        return f"[resource link: {_clean(label)} <{block.uri}>{mime}]"
    if kind == "resource":
        res = block.resource
        mime = f", {res.mime_type}" if res.mime_type else ""
        if hasattr(res, "text"):
            return f"[resource: {res.uri}{mime}]\n{_clean(res.text)}"
        return f"[resource: {res.uri}{mime}, {_size(res.blob)}]"
    return f"[{kind or 'unknown'} content]"


def render_result(result: CallToolResult) -> str:
    """The result as the text an agent reads (see the module docstring)."""
    parts = [_block(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(_clean(json.dumps(result.structured_content, ensure_ascii=False)))
    return "\n".join(parts)
