"""MCP servers over stdio: real servers written with the SDK (``servers/demo.py``),
spawned by the client exactly as in production."""

from __future__ import annotations

import logging
import sys
import time

import pytest
from mcp_helpers import settings, stdio_server, wait_until

from orra_di.errors import ConfigurationError, ToolExecutionError
from orra_di.mcp.client import McpClients, McpServerError, ServerStatus
from orra_di.mcp.tool import McpTool
from orra_di.tool import ToolContext, ToolRegistry

pytestmark = pytest.mark.anyio

CTX = ToolContext("acme:alice", "c1")


def by_name(clients: McpClients) -> dict[str, McpTool]:
    return {t.definition.name: t for t in clients.tools()}


async def test_paginated_list_calls_errors_media_and_bad_bytes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="orra_di.mcp")
    # pages of 3 tools, and lines that are not JSON-RPC (nor UTF-8) before the first frame
    config = settings({"demo": stdio_server("--page-size", "3", "--garbage")}, call_timeout=1.5)
    async with McpClients(config) as clients:
        tools = by_name(clients)
        assert {"echo", "add", "fail", "slow", "crash", "media", "grow", "raw_bytes"} <= set(tools)
        assert len(tools) == 11  # every page was read (3 + 3 + 3 + 2)
        assert tools["add"].definition.input_schema["required"] == ["a", "b"]
        assert tools["echo"].definition.description == "Return the text."

        assert await tools["echo"].execute({"text": "héllo"}, CTX) == "héllo"
        assert await tools["add"].execute({"a": 2, "b": 40}, CTX) == "42"

        with pytest.raises(ToolExecutionError, match="boom"):
            await tools["fail"].execute({"message": "boom"}, CTX)

        media = await tools["media"].execute({}, CTX)
        assert media.splitlines() == [
            "here you go",
            "[image: image/png, 100 bytes]",
            "[resource: file:///notes.txt, text/plain]",
            "note body",
            "[resource: file:///data.bin, application/octet-stream, 10 bytes]",
            "[resource link: report <https://example.invalid/r.pdf>, application/pdf]",
        ]

        # bytes that are not UTF-8 inside a result frame: replaced, the session goes on
        assert await tools["raw_bytes"].execute({}, CTX) == "caf\ufffd \ufffd ok"
        # a stray line on stdout mid-session is skipped
        assert await tools["noise"].execute({}, CTX) == "after noise"

        started = time.monotonic()
        with pytest.raises(ToolExecutionError, match=r"did not answer 'slow' within 1\.5 s"):
            await tools["slow"].execute({"seconds": 30}, CTX)
        assert time.monotonic() - started < 5
        assert await tools["echo"].execute({"text": "still here"}, CTX) == "still here"
        assert clients.servers["demo"].restarts == 0

    assert clients.servers["demo"].status is ServerStatus.STOPPED
    logged = [r.getMessage() for r in caplog.records]
    assert any("not JSON-RPC" in m for m in logged)
    assert any(m == "[demo] demo: starting" for m in logged)  # the server's stderr
    with pytest.raises(ToolExecutionError, match="no longer offered"):
        await tools["echo"].execute({"text": "after close"}, CTX)


async def test_a_server_that_crashes_mid_call_is_started_again_on_the_next_call() -> None:
    async with McpClients(settings({"demo": stdio_server()}, call_timeout=20)) as clients:
        tools = by_name(clients)
        first = await tools["pid"].execute({}, CTX)
        started = time.monotonic()
        with pytest.raises(ToolExecutionError, match="went away during the call to 'crash'"):
            await tools["crash"].execute({}, CTX)
        assert time.monotonic() - started < 5  # not the 20 s call timeout
        await wait_until(lambda: clients.servers["demo"].status is ServerStatus.CRASHED, 5)
        second = await tools["pid"].execute({}, CTX)
        assert second != first
        assert clients.servers["demo"].status is ServerStatus.READY
        assert clients.servers["demo"].restarts == 1


async def test_list_changed_refreshes_the_tools_of_agents_built_before() -> None:
    async with McpClients(settings({"demo": stdio_server()}, max_result_chars=6)) as clients:
        registry = ToolRegistry(clients.tools())
        clients.attach(registry)
        grow = registry.get("grow")
        assert grow is not None and "extra" not in registry
        assert await grow.execute({}, CTX) == "grown"
        await wait_until(lambda: "extra" in registry)
        assert "grow" not in registry
        extra = registry.get("extra")
        assert extra is not None
        assert await extra.execute({}, CTX) == "extra!"
        with pytest.raises(ToolExecutionError, match="no longer offered"):
            await grow.execute({}, CTX)
        echo = registry.get("echo")
        assert echo is not None
        long = await echo.execute({"text": "abcdefghij"}, CTX)  # cut on characters
        assert long == "abcdef\n[output truncated: 6 of 10 characters shown]"


async def test_a_tool_the_server_replaces_is_served_with_its_new_definition() -> None:
    """Same server, same name, new description and schema: the registered tool (the
    same object, updated in place) offers and calls the new one."""
    async with McpClients(settings({"demo": stdio_server("--only", "echo,reshape")})) as clients:
        registry = ToolRegistry(clients.tools())
        clients.attach(registry)
        before = registry.get("echo")
        reshape = registry.get("reshape")
        assert before is not None and reshape is not None
        assert "times" not in before.definition.input_schema["properties"]
        assert await reshape.execute({}, CTX) == "reshaped"

        def reshaped() -> bool:
            tool = registry.get("echo")
            return tool is not None and "times" in tool.definition.input_schema["properties"]

        await wait_until(reshaped)
        (echo,) = [d for d in registry.definitions() if d.name == "echo"]
        assert echo.description == "Return the text, times over."
        assert echo.input_schema["required"] == ["text", "times"]
        assert registry.get("echo") is before  # the old object holds the new definition
        assert await before.execute({"text": "ab", "times": 2}, CTX) == "abab"


async def test_a_tool_that_moves_to_another_server_is_served_by_that_server() -> None:
    """``echo`` offered by ``a``, then by ``b`` too (a clash: ``a``'s is kept), then by
    ``b`` only: the registry must hold ``b``'s tool, not ``a``'s old one, whose calls would
    go to a server that no longer has it."""
    servers = {"a": stdio_server("--only", "echo,drop"), "b": stdio_server("--only", "take")}
    async with McpClients(settings(servers)) as clients:
        registry = ToolRegistry(clients.tools())
        clients.attach(registry)
        old = registry.get("echo")
        take, drop = registry.get("take"), registry.get("drop")
        assert isinstance(old, McpTool) and old.server.name == "a"
        assert take is not None and drop is not None
        assert await take.execute({}, CTX) == "taken"
        await wait_until(lambda: any(t.name == "echo" for t in clients.servers["b"].tools))
        assert registry.get("echo") is old  # both offer it: the first server's is kept
        assert await drop.execute({}, CTX) == "dropped"
        await wait_until(lambda: by_name(clients)["echo"].server.name == "b")

        new = registry.get("echo")
        assert new is by_name(clients)["echo"]
        assert new.definition.description == "Return the text, from the server that took the tool."
        assert await new.execute({"text": "hi"}, CTX) == "taken: hi"
        with pytest.raises(ToolExecutionError, match="no longer offered by MCP server 'a'"):
            await old.execute({"text": "hi"}, CTX)


async def test_two_servers_offering_one_name_need_a_prefix() -> None:
    clash = settings({"one": stdio_server(), "two": stdio_server()})
    with pytest.raises(ConfigurationError, match="'one' and 'two' both offer a tool named 'echo'"):
        async with McpClients(clash):
            pass


async def test_servers_that_cannot_start() -> None:
    missing = {"command": "/nonexistent/mcp-server"}
    with pytest.raises(
        McpServerError, match=r"'ghost'.*command '/nonexistent/[^']*' not found: install it"
    ):
        async with McpClients(settings({"ghost": missing})):
            pass

    # a program that never speaks MCP: stopped at the start timeout
    mute = {
        "command": sys.executable,
        "args": ["-c", "import sys; sys.stdin.read()"],  # reads, never answers
        "start_timeout": 0.3,
        "optional": True,
    }
    started = time.monotonic()
    async with McpClients(settings({"mute": mute, "ghost": {**missing, "optional": True}})) as c:
        assert c.tools() == []
        views = {v.name: v for v in c.views()}
        assert views["mute"].status is ServerStatus.FAILED
        assert views["mute"].error == "did not start within 0.3 s"
        assert "not found: install it" in (views["ghost"].error or "")
    assert time.monotonic() - started < 10
