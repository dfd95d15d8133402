"""Round 12 review: ``orra-di mcp serve`` as docs/mcp.md describes it, driven by the
official ``mcp`` SDK's client over stdio and over Streamable HTTP on 127.0.0.1: one tool
per agent, one conversation per (client, agent), errors as error results, the bearer
token over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import Implementation

from orra_di.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
SERVE = ["-c", "from orra_di.cli import main; main()", "mcp", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "XDG_DATA_HOME": str(tmp_path / "xdg"),
            "ORRA_LLM__KIND": "test",
            "ORRA_STORE__URL": f"sqlite:///{tmp_path / 'sessions.sqlite3'}",
            "ORRA_TOOLS": "[]",
            "ORRA_AGENTS": json.dumps([{"name": "helper"}, {"name": "Scout"}]),
        }
    )
    env.update(extra)
    return env


@asynccontextmanager
async def stdio_session(env: dict[str, str], client: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=SERVE, env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, client_info=Implementation(name=client, version="1")) as s,
    ):
        await s.initialize()
        yield s


async def session_messages(tmp_path: Path) -> dict[str, list[str]]:
    store = SQLiteStore(tmp_path / "sessions.sqlite3")
    try:
        found = {}
        for ns in await store.list():
            session = await store.load(ns)
            assert session is not None
            found[ns.key] = [m.content for m in session.messages]
        return found
    finally:
        await store.aclose()


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def test_each_client_keeps_its_own_conversation_with_each_agent(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    async with stdio_session(env, "Claude Desktop") as desktop:
        first = await desktop.call_tool("helper", {"message": "first from desktop"})
        second = await desktop.call_tool("helper", {"message": "second from desktop"})
        assert not first.is_error and not second.is_error
        assert "You said: second from desktop" in text_of(second)
    async with stdio_session(env, "my:ide/../x") as ide:
        await ide.call_tool("helper", {"message": "from the ide"})

    sessions = await session_messages(tmp_path)
    desktop_history = sessions["mcp:Claude-Desktop:helper"]
    assert [m for m in desktop_history if "desktop" in m and "You said" not in m] == [
        "first from desktop",
        "second from desktop",
    ]
    # the second call continued the first's conversation, in one session
    ide_keys = [k for k in sessions if "from the ide" in sessions[k]]
    assert len(ide_keys) == 1
    (ide_key,) = ide_keys
    # the client's name cannot add segments or climb out of mcp:<client>:<agent>
    assert ide_key.startswith("mcp:") and ide_key.endswith(":helper")
    assert len(ide_key.split(":")) == 3
    assert "from the ide" not in desktop_history


async def test_a_failing_agent_is_an_error_result_that_names_the_cause_not_the_key(
    tmp_path: Path,
) -> None:
    env = base_env(
        tmp_path,
        ORRA_LLM__KIND="openai",
        ORRA_LLM__BASE_URL="http://127.0.0.1:9/v1",
        ORRA_LLM__API_KEY="sk-serve-secret-0123456789",
        ORRA_LLM__MAX_RETRIES="0",
        ORRA_LLM__MODEL="gpt-4o",
    )
    async with stdio_session(env, "host") as session:
        result = await session.call_tool("Scout", {"message": "hello"})
        assert result.is_error
        message = text_of(result)
        assert message and "sk-serve-secret-0123456789" not in message
        unknown = await session.call_tool("nobody", {"message": "hello"})
        assert unknown.is_error
        missing = await session.call_tool("Scout", {})
        assert missing.is_error and "message" in text_of(missing)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = base_env(tmp_path, ORRA_MCP__SERVE_TOKEN="tok-0123456789")
    process = subprocess.Popen(
        [sys.executable, *SERVE, "--http", "--port", str(port)],
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


async def wait_listening(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as plain:
        for _ in range(400):
            try:
                return await plain.post(url, json={})
            except httpx.TransportError:
                await anyio.sleep(0.05)
    raise AssertionError("the server never listened")


async def test_over_http_a_wrong_token_is_refused_and_clients_stay_apart(
    http_server: str, tmp_path: Path
) -> None:
    from mcp.client.streamable_http import streamable_http_client

    assert (await wait_listening(http_server)).status_code == 401
    async with httpx.AsyncClient() as plain:
        wrong = await plain.post(
            http_server, json={}, headers={"Authorization": "Bearer tok-wrong"}
        )
        assert wrong.status_code == 401 and "tok-0123456789" not in wrong.text

    headers = {"Authorization": "Bearer tok-0123456789"}
    for name, message in (("alpha", "hello from alpha"), ("beta", "hello from beta")):
        async with (
            httpx.AsyncClient(headers=headers) as client,
            streamable_http_client(http_server, http_client=client) as (read, write),
            ClientSession(read, write, client_info=Implementation(name=name, version="1")) as s,
        ):
            await s.initialize()
            assert [t.name for t in (await s.list_tools()).tools] == ["helper", "Scout"]
            answer = await s.call_tool("Scout", {"message": message})
            assert not answer.is_error and message in text_of(answer)

    sessions = await session_messages(tmp_path)
    assert sessions["mcp:alpha:scout"][0] == "hello from alpha"
    assert sessions["mcp:beta:scout"][0] == "hello from beta"
