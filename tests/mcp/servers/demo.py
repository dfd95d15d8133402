"""An MCP server written with the official SDK, for the client tests and the benchmark.

``python demo.py [--http PORT] [--page-size N] [--garbage] [--only NAMES]``: stdio by
default, Streamable HTTP on 127.0.0.1:PORT with ``--http``; ``--page-size`` pages
``tools/list`` (the SDK's server answers in one page otherwise); ``--garbage`` prints lines
that are not JSON-RPC on stdout before serving; ``--only echo,drop`` serves only the tools
named, among the usual ones and those that change ``echo`` (``CHANGES``, offered only so).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from typing import Any

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError


class DemoServer(MCPServer):
    page_size = 0

    async def _handle_list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = await self.list_tools()
        if not self.page_size:
            return types.ListToolsResult(tools=tools)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + self.page_size
        return types.ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )


server = DemoServer("demo")
WIRE = 1  # the protocol's stdout: the SDK diverts fd 1 to stderr while it serves


@server.tool()
def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await anyio.sleep(seconds)
    return "woke up"


@server.tool()
def crash() -> str:
    """Exit the whole server process mid-call."""
    sys.stderr.write("demo: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def whoami(ctx: Context) -> str:
    """The request's Authorization header (HTTP only)."""
    headers = ctx.headers or {}
    return str(headers.get("authorization", "none"))


@server.tool()
def media() -> list[Any]:
    """An image, an embedded text resource, a blob and a link."""
    return [
        types.TextContent(type="text", text="here you go"),
        types.ImageContent(
            type="image",
            data=base64.b64encode(b"\x89PNG" + bytes(96)).decode(),
            mime_type="image/png",
        ),
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(
                uri="file:///notes.txt", mime_type="text/plain", text="note body"
            ),
        ),
        types.EmbeddedResource(
            type="resource",
            resource=types.BlobResourceContents(
                uri="file:///data.bin",
                mime_type="application/octet-stream",
                blob=base64.b64encode(bytes(10)).decode(),
            ),
        ),
        types.ResourceLink(
            type="resource_link",
            name="report",
            uri="https://example.invalid/r.pdf",
            mime_type="application/pdf",
        ),
    ]


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool ``extra`` and tell the client the list changed."""

    def extra() -> str:
        """A tool added at run time."""
        return "extra!"

    server.add_tool(extra, name="extra")
    server.remove_tool("grow")
    await ctx.session.send_tool_list_changed()
    return "grown"


async def reshape(ctx: Context) -> str:
    """Replace ``echo`` by one with another description and schema, and say so."""

    def echo(text: str, times: int) -> str:
        """Return the text, times over."""
        return text * times

    server.remove_tool("echo")
    server.add_tool(echo, name="echo")
    await ctx.session.send_tool_list_changed()
    return "reshaped"


async def take(ctx: Context) -> str:
    """Start offering an ``echo`` of this server's own, and say so."""

    def echo(text: str) -> str:
        """Return the text, from the server that took the tool."""
        return f"taken: {text}"

    server.add_tool(echo, name="echo")
    await ctx.session.send_tool_list_changed()
    return "taken"


async def drop(ctx: Context) -> str:
    """Stop offering ``echo``, and say so."""
    server.remove_tool("echo")
    await ctx.session.send_tool_list_changed()
    return "dropped"


CHANGES = {"reshape": reshape, "take": take, "drop": drop}


def keep_only(names: list[str]) -> None:
    """Serve only ``names``: the usual tools not named go, the named ``CHANGES`` come."""
    for tool in anyio.run(server.list_tools):
        if tool.name not in names:
            server.remove_tool(tool.name)
    for name in names:
        if name in CHANGES:
            server.add_tool(CHANGES[name], name=name)


@server.tool()
def noise() -> str:
    """Print a line that is not JSON-RPC on stdout, then answer."""
    os.write(WIRE, b"this is not json\n")
    return "after noise"


@server.tool()
def raw_bytes(ctx: Context) -> str:
    """Answer with a raw stdio frame whose text holds invalid UTF-8 bytes (stdio only)."""
    frame = {
        "jsonrpc": "2.0",
        "id": ctx.request_id,
        "result": {
            "content": [{"type": "text", "text": "caf@"}],
            "structuredContent": {"result": "caf@"},
        },
    }
    data = json.dumps(frame).encode().replace(b"caf@", b"caf\xe9 \xff ok")
    os.write(WIRE, data + b"\n")
    time.sleep(0.2)  # the SDK's own answer comes later and is dropped as a duplicate
    return "ignored"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    if args.only:
        keep_only(args.only.split(","))
    global WIRE
    WIRE = os.dup(1)
    DemoServer.page_size = args.page_size
    sys.stderr.write("demo: starting\n")
    sys.stderr.flush()
    if args.garbage:
        os.write(1, b"Welcome to the demo server!\n\xff\xfe not even utf-8\n{broken json\n")
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
