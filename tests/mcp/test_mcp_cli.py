"""``orra-di mcp list`` (CliRunner, real servers) and ``orra-di mcp serve`` (a real
process, driven by the SDK's own client)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import Implementation
from mcp_helpers import free_port, stdio_server
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.stores.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def test_mcp_list_shows_servers_status_and_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {
        "demo": stdio_server("--page-size", "4", prefix="d_"),
        "ghost": {"command": "/nonexistent/mcp-server"},
    }
    monkeypatch.setenv("ORRA_MCP__SERVERS", json.dumps(servers))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["mcp", "list"])
    # A server that start-up would refuse fails the listing too (a check in a deploy).
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "error: 1 MCP server(s) not ready: ghost" in result.stderr
    lines = result.stdout.splitlines()
    demo = next(line for line in lines if line.startswith("│ demo "))
    assert "stdio" in demo and "ready" in demo and "│ 11 " in demo
    ghost = next(line for line in lines if line.startswith("│ ghost "))
    assert "failed" in ghost and "command '/nonexistent/mcp-server' not found" in ghost
    d_add = next(line for line in lines if line.startswith("│ d_add "))
    assert "Add two integers." in d_add
    servers["ghost"]["optional"] = True  # start-up goes on without it: so does the check
    monkeypatch.setenv("ORRA_MCP__SERVERS", json.dumps(servers))
    optional = CliRunner().invoke(app, ["mcp", "list"])
    assert optional.exit_code == 0, optional.stderr
    ghost = next(line for line in optional.stdout.splitlines() if line.startswith("│ ghost "))
    assert "failed" in ghost and "not found" in ghost


def test_mcp_list_without_servers() -> None:
    result = CliRunner().invoke(app, ["mcp", "list"])
    assert result.exit_code == 0
    assert "no MCP servers configured" in result.stdout


def test_serve_http_needs_a_token() -> None:
    result = CliRunner().invoke(
        app, ["mcp", "serve", "--http", "--port", str(free_port())], env={"ORRA_LLM__KIND": "test"}
    )
    assert result.exit_code == 1
    assert "ORRA_MCP__SERVE_TOKEN" in result.stderr


@pytest.mark.anyio
async def test_serve_offers_each_agent_as_a_tool_keyed_per_client(tmp_path: Path) -> None:
    db = tmp_path / "sessions.sqlite3"
    env = {
        "PYTHONPATH": str(ROOT),
        "ORRA_LLM__KIND": "test",
        "ORRA_STORE__URL": f"sqlite:///{db}",
        "ORRA_TOOLS": "[]",
        "ORRA_AGENTS": json.dumps([{"name": "helper"}, {"name": "Research Bot"}]),
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from orra_di.cli import main; main()", "mcp", "serve"],
        env=env,
        cwd=str(tmp_path),
    )
    host = Implementation(name="Claude Desktop", version="1.0")
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, client_info=host) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        assert [t.name for t in listed.tools] == ["helper", "Research_Bot"]
        assert listed.tools[0].input_schema["required"] == ["message"]
        answer = await session.call_tool("helper", {"message": "hello over MCP"})
        assert not answer.is_error
        text = answer.content[0]
        assert text.type == "text" and "You said: hello over MCP" in text.text
        await session.call_tool("Research_Bot", {"message": "and you?"})

    store = SQLiteStore(db)
    try:
        keys = sorted(ns.key for ns in await store.list())
    finally:
        await store.aclose()
    # one session per (client, agent), and nothing outside the client's subtree
    assert {"mcp:Claude-Desktop:helper", "mcp:Claude-Desktop:research bot"} <= set(keys)
    assert all(key.startswith("mcp:Claude-Desktop:") for key in keys)


@pytest.fixture
def http_serve(tmp_path: Path) -> Iterator[str]:
    """``orra-di mcp serve --http`` as a real process; its URL."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ORRA_")},
        "PYTHONPATH": str(ROOT),
        "ORRA_LLM__KIND": "test",
        "ORRA_STORE__URL": "memory://",
        "ORRA_TOOLS": "[]",
        "ORRA_MCP__SERVE_TOKEN": "let-me-in",
    }
    args = ["-c", "from orra_di.cli import main; main()", "mcp", "serve", "--http"]
    process = subprocess.Popen(
        [sys.executable, *args, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_serve_over_http_wants_the_bearer_token(http_serve: str) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient() as plain:
        for _ in range(400):  # until it listens
            try:
                refused = await plain.post(http_serve, json={})
                break
            except httpx2.TransportError:
                await anyio.sleep(0.05)
    assert refused.status_code == 401

    headers = {"Authorization": "Bearer let-me-in"}
    async with (
        httpx2.AsyncClient(headers=headers) as client,
        streamable_http_client(http_serve, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert [t.name for t in (await session.list_tools()).tools] == ["Atlas"]  # the default
        answer = await session.call_tool("Atlas", {"message": "over http"})
        assert not answer.is_error


def test_serve_http_on_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    """As ``orra-di serve``: exit 1, the address and what to do, no traceback; and no
    "MCP server on ..." line first, as if it were listening."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ORRA_")},
        "PYTHONPATH": str(ROOT),
        "ORRA_LLM__KIND": "test",
        "ORRA_STORE__URL": "memory://",
        "ORRA_MCP__SERVE_TOKEN": "let-me-in",
        "NO_COLOR": "1",
        "COLUMNS": "250",
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from orra_di.cli import main; main()",
             "mcp", "serve", "--http", "--port", str(port)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "another --port" in done.stderr
    assert "Traceback" not in done.stderr and "MCP server on" not in done.stderr
