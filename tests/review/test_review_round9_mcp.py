"""Round 9 review: docs/mcp.md's settings forms and tool name clashes after start-up.

"A server's tool named like another tool of the agents ... which it would otherwise
replace" is refused at start-up; a tool the server adds later (``tools/list_changed``)
under such a name must not replace the agent's either. The environment forms of
``ORRA_MCP__SERVERS`` (JSON, or one variable per option) both reach ``orra-di mcp
list``, and a server's ``env`` stays hidden in ``orra-di config``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from orra_di import tool
from orra_di.cli import app
from orra_di.mcp.client import McpClients
from orra_di.mcp.settings import McpSettings
from orra_di.tool import ToolContext, ToolRegistry

DEMO = str(Path(__file__).parents[1] / "mcp" / "servers" / "demo.py")
CTX = ToolContext("acme:alice")


@pytest.fixture
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("COLUMNS", "250")


@tool(name="extra")
def app_extra() -> str:
    """The application's own tool named extra."""
    return "the application's extra"


@pytest.mark.anyio
async def test_a_tool_added_later_under_an_agents_tool_name_does_not_replace_it() -> None:
    settings = McpSettings.model_validate(
        {"servers": {"demo": {"command": sys.executable, "args": [DEMO]}}}
    )
    async with McpClients(settings) as clients:
        registry = ToolRegistry([app_extra, *clients.tools()])
        clients.attach(registry)
        grow = registry.get("grow")
        assert grow is not None
        assert await grow.execute({}, CTX) == "grown"  # the server now offers "extra"
        with anyio.fail_after(10):
            while "grow" in registry:  # noqa: ASYNC110 - the client's refresh has no event
                await anyio.sleep(0.02)
        extra = registry.get("extra")
        assert extra is app_extra
        assert await extra.execute({}, CTX) == "the application's extra"


@pytest.mark.usefixtures("_isolated")
@pytest.mark.parametrize("form", ["json", "per-option"])
def test_both_environment_forms_reach_mcp_list_and_hide_the_env(
    monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    if form == "json":
        server = {
            "command": sys.executable,
            "args": [DEMO],
            "prefix": "d_",
            "env": {"DEMO_SECRET": "hunter2-secret"},
        }
        monkeypatch.setenv("ORRA_MCP__SERVERS", json.dumps({"demo": server}))
    else:
        monkeypatch.setenv("ORRA_MCP__SERVERS__DEMO__COMMAND", sys.executable)
        monkeypatch.setenv("ORRA_MCP__SERVERS__DEMO__ARGS", json.dumps([DEMO]))
        monkeypatch.setenv("ORRA_MCP__SERVERS__DEMO__PREFIX", "d_")
        monkeypatch.setenv("ORRA_MCP__SERVERS__DEMO__ENV", '{"DEMO_SECRET": "hunter2-secret"}')
    runner = CliRunner()
    listed: Any = runner.invoke(app, ["mcp", "list"])
    assert listed.exit_code == 0, listed.output
    assert "ready" in listed.output and "d_echo" in listed.output and "d_add" in listed.output
    assert "hunter2-secret" not in listed.output
    shown: Any = runner.invoke(app, ["config"])
    assert shown.exit_code == 0, shown.output
    assert "hunter2-secret" not in shown.output
    assert "DEMO_SECRET" in shown.output
