"""MCP servers in the container: ``lifespan`` opens them, every agent gets their tools
(prefixed, under the policies), and a server that cannot start stops the start-up."""

from __future__ import annotations

import os
from typing import Any

import pytest
from dependency_injector import providers
from mcp_helpers import stdio_server

from orra_di.containers import Container, lifespan
from orra_di.mcp.client import McpServerError
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, tool_calls

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_container(**settings: Any) -> Container:
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", [])
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


async def test_agents_call_prefixed_mcp_tools_under_the_policies() -> None:
    container = make_container(
        mcp={"servers": {"demo": stdio_server(prefix="demo_")}},
        policies={"acme": {"deny": ["demo_crash"]}},
    )
    script = ScriptedProvider(
        [tool_calls(call("demo_add", {"a": 2, "b": 3}), call("demo_crash", {})), "five"]
    )
    container.llm.override(providers.Object(script))
    async with lifespan(container):
        result = await container.runtimes().default.run("acme:alice", "add 2 and 3")
    assert result.final_message.content == "five"
    offered = {d.name for d in script.requests[0].tools}
    assert {"demo_add", "demo_echo"} <= offered
    assert "demo_crash" not in offered  # denied in acme: not even shown
    results = {r.call_id: r for m in script.requests[1].messages for r in m.tool_results}
    add, crash = results.values()
    assert (add.content, add.is_error) == ("5", False)
    assert crash.is_error and "not allowed" in crash.content
    # closed with the lifespan: the next one starts the servers afresh
    assert container.mcp().tools() == []


async def test_a_required_server_that_cannot_start_stops_the_lifespan() -> None:
    container = make_container(
        mcp={"servers": {"ghost": {"command": "/nonexistent/mcp-server"}}},
    )
    with pytest.raises(McpServerError, match="'ghost'"):
        async with lifespan(container):
            pass
