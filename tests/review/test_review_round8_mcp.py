"""Round 8 review: MCP servers in the container, against docs/mcp.md.

"A tool's name is the server's name for it, after the server's prefix. Two servers
offering the same name stop the start-up with a ConfigurationError that says which":
a server's tool named like one of the application's (or a built-in) must not replace
it silently either: a third-party program would answer the calls the application
meant for its own code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from orra_di import tool
from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError
from orra_di.settings import load_settings

pytestmark = pytest.mark.anyio

DEMO = str(Path(__file__).parents[1] / "mcp" / "servers" / "demo.py")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@tool
def add(a: int, b: int) -> str:
    """The application's own addition."""
    return f"app: {a + b}"


def make_container(**server: Any) -> Container:
    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        tools=[],
        mcp={"servers": {"demo": {"command": sys.executable, "args": [DEMO], **server}}},
    )
    container.settings.override(providers.Object(settings))
    container.tool_factory.override(providers.Object(lambda profile: [add]))
    return container


async def test_a_server_tool_named_like_an_application_tool_is_refused() -> None:
    container = make_container()
    async with lifespan(container):
        with pytest.raises(ConfigurationError, match=r"'add'.*prefix"):
            _ = container.runtimes().default
