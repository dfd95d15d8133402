"""The ``mcp`` settings section: servers from orra.toml and ORRA_MCP__SERVERS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orra_di.errors import ConfigurationError
from orra_di.mcp.client import McpClients
from orra_di.settings import load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_servers_from_the_environment_keep_secrets_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {
        "fs": {"command": "npx", "args": ["-y", "server-fs", "/data"], "env": {"TOKEN": "t0p"}},
        "api": {"url": "https://mcp.example.invalid/mcp", "headers": {"Authorization": "Bearer k"}},
    }
    monkeypatch.setenv("ORRA_MCP__SERVERS", json.dumps(servers))
    monkeypatch.setenv("ORRA_MCP__CALL_TIMEOUT", "5")
    mcp = load_settings().mcp
    assert mcp.call_timeout == 5
    assert mcp.servers["fs"].transport == "stdio" and mcp.servers["fs"].args[-1] == "/data"
    assert mcp.servers["api"].transport == "http"
    assert mcp.servers["api"].headers["Authorization"].get_secret_value() == "Bearer k"
    shown = repr(mcp)
    assert "t0p" not in shown and "Bearer k" not in shown
    # per-server timeouts fall back to the section's
    clients = McpClients(mcp)
    assert clients.servers["fs"].call_timeout == 5
    assert clients.servers["fs"].start_timeout == mcp.start_timeout


def test_servers_from_orra_toml(tmp_path: Path) -> None:
    (tmp_path / "orra.toml").write_text(
        """
[mcp]
start_timeout = 10

[mcp.servers.github]
command = "github-mcp-server"
args = ["stdio"]
prefix = "gh_"
call_timeout = 120
optional = true
"""
    )
    server = load_settings().mcp.servers["github"]
    assert (server.prefix, server.call_timeout, server.optional) == ("gh_", 120, True)
    assert McpClients(load_settings().mcp).servers["github"].start_timeout == 10


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({}, "exactly one of 'command'"),
        ({"command": "x", "url": "http://127.0.0.1:1/mcp"}, "exactly one of 'command'"),
        ({"url": "ftp://host/mcp"}, "starts with http"),
        ({"url": "http://127.0.0.1:1/mcp", "args": ["a"]}, "only apply to a 'command'"),
        ({"command": "x", "headers": {"A": "b"}}, "only apply to a 'url'"),
        ({"command": "x", "prefix": "bad prefix"}, "a prefix is up to 32"),
        ({"command": "x", "call_timeout": 0}, "call_timeout"),
    ],
)
def test_bad_servers_are_explained(server: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(mcp={"servers": {"s": server}})


def test_server_names_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="server name 'a b'"):
        load_settings(mcp={"servers": {"a b": {"command": "x"}}})
