"""Round 18 security review: secrets in what a run logs.

Fields holding secrets were masked where they are shown (``orra-di config``, reprs,
errors), but a tool's output is plain text: a command printing ``tools.exec.env``, or a
tool error echoing the token it sent, went into the logging hook's preview in clear,
because the container gave the hook the model's key only.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from dependency_injector import providers

from orra_di.containers import Container, lifespan
from orra_di.plugins.settings import PluginOptions
from orra_di.settings import load_settings, secret_values
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

EXEC_TOKEN = "deploy-R18secret-0123456789abcdef"
GITHUB_TOKEN = "ghp_R18secretGITHUB0123456789abcdef"
PLUGIN_TOKEN = "plugin-R18secret-0123456789abcdef"
MCP_HEADER = "Bearer mcp-R18secret-0123456789abcdef"


def _runs_printenv(request: Any) -> Any:
    """Asks for ``printenv DEPLOY_TOKEN``, then answers."""
    if not request.messages[-1].tool_results:
        return tool_calls(call("exec", {"command": "printenv DEPLOY_TOKEN"}))
    return reply("done")


async def test_the_logging_hook_masks_a_printed_exec_env_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/tools.md: tools.exec.env values are masked "in logs"; the preview of the
    command's output showed the value in clear."""
    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        logging={"enabled": True, "logger": "orra_di.run.r18secrets"},
        tools={
            "exec": {"enabled": True, "allow": ["printenv"], "env": {"DEPLOY_TOKEN": EXEC_TOKEN}}
        },
    )
    container.settings.override(providers.Object(settings))
    container.llm.override(providers.Object(ScriptedProvider(_runs_printenv)))
    caplog.set_level(logging.DEBUG)
    async with lifespan(container):
        runtimes = container.runtimes()
        result = await runtimes[runtimes.default_agent].run("r18-secrets:exec", "go")
    assert result.final_message.content == "done"
    # the command did get the value (the model sees it: that is what the tool is for)
    assert EXEC_TOKEN in result.turns[0].tool_results[0].content
    records = [r for r in caplog.records if r.name == "orra_di.run.r18secrets"]
    assert any("[tool] exec" in r.getMessage() for r in records)
    assert EXEC_TOKEN not in caplog.text
    assert all(EXEC_TOKEN not in str(vars(r)) for r in records)  # extra= fields too
    assert "***" in caplog.text


def test_secret_values_finds_every_kind_of_secret_the_settings_hold() -> None:
    settings = load_settings(
        store={"url": "memory://"},
        tools={
            "exec": {"env": {"DEPLOY_TOKEN": EXEC_TOKEN}},
            "github": {"token": GITHUB_TOKEN},
        },
        mcp={
            "servers": {
                "remote": {
                    "url": "http://127.0.0.1:9/mcp",
                    "headers": {"Authorization": MCP_HEADER},
                }
            }
        },
    )
    found = secret_values(settings)
    for secret in (EXEC_TOKEN, GITHUB_TOKEN, MCP_HEADER):
        assert secret in found
    options = PluginOptions({"endpoint": "https://x.example", "nested": {"api_key": PLUGIN_TOKEN}})
    # a plugin's settings are free-form: what sits under a secret-looking key, only
    assert secret_values({"acme": options}) == [PLUGIN_TOKEN]


async def test_an_mcp_servers_stderr_is_logged_without_its_env_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stdio server that cannot authenticate often prints the token it was given; its
    stderr went to the ``orra_di.mcp.server`` log as it was."""
    pytest.importorskip("mcp")
    import sys

    from orra_di.mcp.client import McpClients
    from orra_di.mcp.settings import McpSettings

    # it never answers (it waits for its stdin to close), so its stderr is read while the
    # start-up waits, whatever the scheduling
    script = (
        "import os, sys; sys.stderr.write('login failed with ' + os.environ['TOKEN'] + "
        "'\\n'); sys.stderr.flush(); sys.stdin.read()"
    )
    settings = McpSettings(
        servers={
            "r18": {
                "command": sys.executable,
                "args": ["-c", script],
                "env": {"TOKEN": EXEC_TOKEN},
                "start_timeout": 2,
                "optional": True,
            }
        }
    )
    caplog.set_level(logging.DEBUG)
    async with McpClients(settings, strict=False):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "orra_di.mcp.server"]
    assert "[r18] login failed with ***" in lines
    assert EXEC_TOKEN not in caplog.text
